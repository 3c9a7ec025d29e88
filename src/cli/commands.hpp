#pragma once
// The verbs of `strata`, parsed with CLI11.
namespace strata::cli {

// Parses argv and runs the chosen verb; returns the exit code. Throws strata::Error on bad input.
int run(int argc, char** argv);

}  // namespace strata::cli
