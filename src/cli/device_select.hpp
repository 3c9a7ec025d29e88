#pragma once
// One GPU per MPI rank, chosen before Kokkos starts.
#include <mpi.h>

#include <optional>

namespace strata::cli {

// The device this rank should drive: its node-local rank modulo the GPUs it can see (ranks share GPUs round-robin
// when a node runs more ranks than it has GPUs; under a Slurm binding that leaves one visible GPU per rank, 0).
// nullopt when Kokkos' default execution space is not a GPU. Collective over `world` (splits it by node).
std::optional<int> local_device(MPI_Comm world);

}  // namespace strata::cli
