#pragma once
// Small collective helpers for preprocessing that runs on every rank of an MPI communicator (MPI_COMM_SELF for
// one process): an error on one rank must stop all of them with the same outcome instead of leaving the others
// blocked in the next collective.
#include <mpi.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <vector>

namespace strata::data {

// Runs `work` on this rank, then agrees with every rank: if any failed, all throw (the failing rank its own error,
// the others "rank R failed"). `what` names the phase in the others' message.
void run_on_all_ranks(MPI_Comm comm, const char* what, const std::function<void()>& work);

// Every rank's value, in rank order.
std::vector<int64_t> all_gather_int64(MPI_Comm comm, int64_t value);
// Every rank's vector concatenated in rank order (lengths may differ).
std::vector<uint64_t> all_gather_concat(MPI_Comm comm, const std::vector<uint64_t>& mine);

// [begin, end) of item block `rank` when n items are cut into `ranks` contiguous blocks of nearly equal size.
inline std::pair<int64_t, int64_t> block_range(int64_t n, int ranks, int rank) {
  return {n * rank / ranks, n * (rank + 1) / ranks};
}

}  // namespace strata::data
