#pragma once
// `strata preprocess ...` (text, bpe-train, images, sequences) and `strata dataset ...` (inspect, verify, bench):
// each registers its subcommands and, once parsed, sets `action` to the work to run.
#include <CLI/CLI.hpp>
#include <mpi.h>

#include <functional>

namespace strata::cli {

using Action = std::function<int()>;

void add_preprocess_commands(CLI::App& app, MPI_Comm world, Action& action);
void add_dataset_commands(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
