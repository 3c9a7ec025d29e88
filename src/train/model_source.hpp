#pragma once
// Trained models named on the command line or in a config (ensemble members, a distillation teacher): a weights file
// (train.save_weights, best.h5, strata export --format hdf5), or a checkpoint file or directory, whose model comes
// from its own file and must fit the run's dataset.
#include <mpi.h>

#include <string>

#include "core/config.hpp"

namespace strata {

// The weights file of `path`: itself when it is a strata-weights file; else its checkpoint (the file, or the
// directory's latest) exported to `export_path` by rank 0 of `world`. Collective; throws naming `path`.
std::string weights_file_of(const std::string& path, const std::string& export_path, MPI_Comm world);

// The model stored in a weights file, checked against the run (`config`, its model resolved): the same kind,
// fitting the dataset (classifiers: classes, input shape, labels) or the vocabulary and sequence length (gpt).
// `what` names it in errors ("strata ensemble: member 'runs/a/weights.h5'").
ModelConfig stored_model_for(const std::string& weights, const Config& config, const std::string& what);

}  // namespace strata
