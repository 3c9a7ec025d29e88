#pragma once
// The verbs of `strata`, parsed with CLI11.
#include <mpi.h>

namespace strata::cli {

// Parses argv and runs the chosen verb over the ranks of `world`; returns the exit code.
// Throws strata::Error on bad input.
int run(int argc, char** argv, MPI_Comm world);

}  // namespace strata::cli
