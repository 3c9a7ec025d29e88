#include "data/rank_work.hpp"

#include "core/error.hpp"

namespace strata::data {

void run_on_all_ranks(MPI_Comm comm, const char* what, const std::function<void()>& work) {
  std::exception_ptr error;
  try {
    work();
  } catch (...) {
    error = std::current_exception();
  }
  int rank = 0;
  STRATA_MPI(MPI_Comm_rank(comm, &rank));
  // The lowest failing rank, or INT_MAX when every rank succeeded.
  int mine = error ? rank : INT32_MAX, first = INT32_MAX;
  STRATA_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
  if (error) std::rethrow_exception(error);
  STRATA_CHECK(first == INT32_MAX, "{}: rank {} failed (its message says why)", what, first);
}

std::vector<int64_t> all_gather_int64(MPI_Comm comm, int64_t value) {
  int size = 1;
  STRATA_MPI(MPI_Comm_size(comm, &size));
  std::vector<int64_t> all(static_cast<size_t>(size));
  STRATA_MPI(MPI_Allgather(&value, 1, MPI_INT64_T, all.data(), 1, MPI_INT64_T, comm));
  return all;
}

std::vector<uint64_t> all_gather_concat(MPI_Comm comm, const std::vector<uint64_t>& mine) {
  const auto counts64 = all_gather_int64(comm, int64_t(mine.size()));
  std::vector<int> counts, displs;
  int64_t total = 0;
  for (auto c : counts64) {
    STRATA_CHECK(total + c < INT32_MAX, "all_gather_concat: {} values exceed MPI's int counts", total + c);
    displs.push_back(int(total));
    counts.push_back(int(c));
    total += c;
  }
  std::vector<uint64_t> all(static_cast<size_t>(total));
  STRATA_MPI(MPI_Allgatherv(mine.data(), int(mine.size()), MPI_UINT64_T, all.data(), counts.data(), displs.data(),
                            MPI_UINT64_T, comm));
  return all;
}

}  // namespace strata::data
