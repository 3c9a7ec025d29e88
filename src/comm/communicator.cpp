#include "comm/communicator.hpp"

#include <climits>

#include "core/error.hpp"

namespace strata {

MpiCommunicator::MpiCommunicator(MPI_Comm parent) {
  STRATA_MPI(MPI_Comm_dup(parent, &comm_));
  // Errors come back as codes (checked by STRATA_MPI) instead of aborting inside MPI.
  STRATA_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  describe();
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::adopt(MPI_Comm owned) {
  std::unique_ptr<MpiCommunicator> c(new MpiCommunicator());
  c->comm_ = owned;
  STRATA_MPI(MPI_Comm_set_errhandler(owned, MPI_ERRORS_RETURN));
  c->describe();
  return c;
}

void MpiCommunicator::describe() {
  STRATA_MPI(MPI_Comm_rank(comm_, &rank_));
  STRATA_MPI(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
}

namespace {
template <class T>
void all_reduce(MPI_Comm comm, int size, T* data, size_t count, MPI_Datatype type) {
  if (size == 1 || count == 0) return;
  // MPI counts are int: reduce in pieces below INT_MAX elements.
  for (size_t done = 0; done < count;) {
    const int n = int(std::min<size_t>(count - done, INT_MAX));
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, comm));
    done += size_t(n);
  }
}
}  // namespace

void MpiCommunicator::all_reduce_sum(float* data, size_t count) { all_reduce(comm_, size_, data, count, MPI_FLOAT); }
void MpiCommunicator::all_reduce_sum(double* data, size_t count) { all_reduce(comm_, size_, data, count, MPI_DOUBLE); }

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (size_ == 1 || bytes == 0) return;
  STRATA_CHECK(bytes <= size_t(INT_MAX), "broadcast of {} bytes exceeds one MPI message", bytes);
  STRATA_MPI(MPI_Bcast(data, int(bytes), MPI_BYTE, root, comm_));
}

void MpiCommunicator::barrier() {
  if (size_ > 1) STRATA_MPI(MPI_Barrier(comm_));
}

}  // namespace strata
