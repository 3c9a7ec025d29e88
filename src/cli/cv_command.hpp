#pragma once
// `strata cv --config FILE --folds K`: k-fold cross-validation (train/cross_validation.hpp). Trains the folds one after
// another over every rank (any layout), or one fold per call (--fold I: a Slurm array task, jobs/cv.sbatch), then
// reports per-fold and mean +- std validation metrics (--report: only the report) in <train.out_dir>/cv.json.
#include <mpi.h>
#include <CLI/CLI.hpp>

#include "cli/preprocess_commands.hpp"

namespace strata::cli {

void add_cv_command(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
