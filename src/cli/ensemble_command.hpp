#pragma once
// `strata ensemble --config FILE --member A --member B ...`: evaluates each member (a weights file, or a checkpoint
// file or directory) on the validation split of the config's dataset and combines them (train/ensemble.hpp),
// reporting each member's metrics and the ensemble's.
#include <mpi.h>
#include <CLI/CLI.hpp>

#include "cli/preprocess_commands.hpp"

namespace strata::cli {

void add_ensemble_command(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
