#pragma once
// `strata inspect CHECKPOINT` (run state, tensors, checksums) and `strata export CHECKPOINT --format F -o OUT`
// (model weights as safetensors or a strata-weights HDF5 file): one process reads the checkpoint; launched under
// mpirun, rank 0 does the work and the other ranks return at once.
#include <mpi.h>
#include <CLI/CLI.hpp>

#include "cli/preprocess_commands.hpp"

namespace strata::cli {

void add_checkpoint_commands(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
