#pragma once
// `strata prune WEIGHTS --out SMALLER.h5 [--channels F] [--units F] [--hidden F] [--heads F] [--mlp F]`: structured
// pruning (train/structured_pruning.hpp) of a weights file or checkpoint into a smaller model's weights file.
#include <mpi.h>
#include <CLI/CLI.hpp>

#include "cli/preprocess_commands.hpp"

namespace strata::cli {

void add_prune_command(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
