// `strata <verb>`: thin entry points. Library code throws strata::Error; this reports one line per rank
// and exits non-zero.
#include <fmt/format.h>
#include <mpi.h>
#include <CLI/CLI.hpp>

#include <Kokkos_Core.hpp>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/device_select.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "train/stop_request.hpp"

int main(int argc, char** argv) {
  // Threads: the data prefetcher never calls MPI, but an async checkpoint writes (collectively) from its own thread.
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  strata::set_error_rank(rank);
  int rc = 0;
  {
    // Kokkos sees only its own --kokkos-* arguments (it would answer `--help` with its own help otherwise).
    std::vector<char*> kokkos_args{argv[0]}, strata_args{argv[0]};
    for (int i = 1; i < argc; ++i)
      (std::string(argv[i]).rfind("--kokkos-", 0) == 0 ? kokkos_args : strata_args).push_back(argv[i]);
    // GPU builds: the node-local rank picks its device before Kokkos starts, unless --kokkos-device-id was given.
    std::string device_arg;
    bool device_given = false;
    for (char* a : kokkos_args) device_given |= std::string(a).rfind("--kokkos-device-id", 0) == 0;
    try {
      if (const auto device = strata::cli::local_device(MPI_COMM_WORLD); device && !device_given) {
        device_arg = "--kokkos-device-id=" + std::to_string(*device);
        kokkos_args.push_back(device_arg.data());
      }
    } catch (const strata::Error& e) {
      fmt::print(stderr, "strata: error: {} [rank {}]\n", e.what(), rank);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int kokkos_argc = int(kokkos_args.size());
    Kokkos::ScopeGuard kokkos(kokkos_argc, kokkos_args.data());
    strata::h5::quiet_errors();
    try {
      rc = strata::cli::run(int(strata_args.size()), strata_args.data(), MPI_COMM_WORLD);
    } catch (const strata::Error& e) {
      fmt::print(stderr, "strata: error: {} [rank {}, {}]\n", e.what(), e.rank(), e.where());
      rc = 2;
    } catch (const std::exception& e) {
      fmt::print(stderr, "strata: error: {} [rank {}]\n", e.what(), rank);
      rc = 2;
    }
  }
  if (rc != 0 && rc != strata::kExitResumable) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, rc);  // take the other ranks down instead of leaving them hung
  }
  MPI_Finalize();
  return rc;
}
