#pragma once
// `strata preprocess ...` (text, bpe-train, images, sequences) and `strata dataset ...` (inspect, verify, bench):
// each registers its subcommands and, once parsed, sets `action` to the work to run.
#include <mpi.h>
#include <CLI/CLI.hpp>

#include <functional>

namespace strata::cli {

using Action = std::function<int()>;

// This process's rank in `comm` (the commands that write one file run on rank 0 only).
inline int rank_of(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

void add_preprocess_commands(CLI::App& app, MPI_Comm world, Action& action);
void add_dataset_commands(CLI::App& app, MPI_Comm world, Action& action);

}  // namespace strata::cli
