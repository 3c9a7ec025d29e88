#include "comm/communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "core/error.hpp"

namespace strata {

// ---- Completion through the request's own backend.

void Communicator::wait(Request& request) {
  if (request.pending()) request.ops()->wait(request);
}

bool Communicator::test(Request& request) { return !request.pending() || request.ops()->test(request); }

void Communicator::wait_all(std::vector<Request>& requests) {
  for (auto& r : requests) wait(r);
}

namespace {

template <class T>
MPI_Datatype mpi_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

// Operations whose MPI count cannot be split reject counts above INT_MAX, on every group size, so a job
// fails the same way whatever its layout.
void check_count(const char* what, size_t count) {
  STRATA_CHECK(count <= size_t(INT_MAX),
               "{} of {} elements exceeds one MPI message (at most INT_MAX = {} elements): split the buffer", what,
               count, INT_MAX);
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

void mpi_wait(Request& r) {
  STRATA_MPI(MPI_Wait(&r.handle().mpi, MPI_STATUS_IGNORE));
  r.mark_complete();
}

bool mpi_test(Request& r) {
  int done = 0;
  STRATA_MPI(MPI_Test(&r.handle().mpi, &done, MPI_STATUS_IGNORE));
  if (done) r.mark_complete();
  return done != 0;
}

void mpi_release(Request& r, bool unwinding) noexcept {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!unwinding && !finalized) {
    const int rc = MPI_Wait(&r.handle().mpi, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING] = {0};
      int len = 0;
      MPI_Error_string(rc, text, &len);
      std::fprintf(stderr, "[rank %d] strata: MPI_Wait of a request completed by its destructor failed: %s\n",
                   error_rank(), text);
    }
  }
  r.mark_complete();
}

const Request::Ops kMpiOps{"MPI", mpi_wait, mpi_test, mpi_release};

}  // namespace

// ---- MpiCommunicator: lifetime.

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

void MpiCommunicator::check_peer(const char* what, int peer, int tag) const {
  STRATA_CHECK(peer >= 0 && peer < size_, "{}: peer rank {} outside a group of {} ranks", what, peer, size_);
  STRATA_CHECK(tag >= 0, "{}: tag {} must be >= 0", what, tag);
}

// ---- Collectives.

template <class T>
void MpiCommunicator::all_reduce(T* data, size_t count, MPI_Op op) {
  if (size_ == 1 || count == 0) return;
  // MPI counts are int: reduce in pieces of at most INT_MAX elements.
  for (size_t done = 0; done < count;) {
    const int n = int(std::min<size_t>(count - done, INT_MAX));
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, data + done, n, mpi_type<T>(), op, comm_));
    done += size_t(n);
  }
}

void MpiCommunicator::all_reduce_sum(float* data, size_t count) { all_reduce(data, count, MPI_SUM); }
void MpiCommunicator::all_reduce_sum(double* data, size_t count) { all_reduce(data, count, MPI_SUM); }
void MpiCommunicator::all_reduce_max(float* data, size_t count) { all_reduce(data, count, MPI_MAX); }
void MpiCommunicator::all_reduce_max(double* data, size_t count) { all_reduce(data, count, MPI_MAX); }

template <class T>
void MpiCommunicator::reduce_scatter(const T* send, T* recv, size_t n) {
  check_count("reduce_scatter_sum", n);
  if (n == 0) return;
  const bool in_place = recv == send + size_t(rank_) * n;
  STRATA_CHECK(in_place || !overlaps(send, size_t(size_) * n * sizeof(T), recv, n * sizeof(T)),
               "reduce_scatter_sum: the receive buffer overlaps the send buffer other than at this rank's block "
               "(in place means recv == send + rank * recv_count)");
  if (size_ == 1) {
    if (!in_place) std::memcpy(recv, send, n * sizeof(T));
    return;
  }
  if (in_place) {
    // MPI forbids aliased buffers and its MPI_IN_PLACE layout differs (result at the start): reduce into
    // a temporary, then copy into this rank's block.
    std::vector<T> block(n);
    STRATA_MPI(MPI_Reduce_scatter_block(send, block.data(), int(n), mpi_type<T>(), MPI_SUM, comm_));
    std::memcpy(recv, block.data(), n * sizeof(T));
  } else {
    STRATA_MPI(MPI_Reduce_scatter_block(send, recv, int(n), mpi_type<T>(), MPI_SUM, comm_));
  }
}

void MpiCommunicator::reduce_scatter_sum(const float* send, float* recv, size_t n) { reduce_scatter(send, recv, n); }
void MpiCommunicator::reduce_scatter_sum(const double* send, double* recv, size_t n) { reduce_scatter(send, recv, n); }

template <class T>
void MpiCommunicator::gather(const T* send, T* recv, size_t n) {
  check_count("all_gather", n);
  if (n == 0) return;
  const bool in_place = send == recv + size_t(rank_) * n;
  STRATA_CHECK(in_place || !overlaps(send, n * sizeof(T), recv, size_t(size_) * n * sizeof(T)),
               "all_gather: the send buffer overlaps the receive buffer other than at this rank's block "
               "(in place means send == recv + rank * send_count)");
  if (size_ == 1) {
    if (!in_place) std::memcpy(recv, send, n * sizeof(T));
    return;
  }
  if (in_place) {
    STRATA_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, int(n), mpi_type<T>(), comm_));
  } else {
    STRATA_MPI(MPI_Allgather(send, int(n), mpi_type<T>(), recv, int(n), mpi_type<T>(), comm_));
  }
}

void MpiCommunicator::all_gather(const float* send, float* recv, size_t n) { gather(send, recv, n); }
void MpiCommunicator::all_gather(const double* send, double* recv, size_t n) { gather(send, recv, n); }

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  STRATA_CHECK(root >= 0 && root < size_, "broadcast: root {} outside a group of {} ranks", root, size_);
  if (size_ == 1 || bytes == 0) return;
  auto* p = static_cast<char*>(data);
  for (size_t done = 0; done < bytes;) {
    const int n = int(std::min<size_t>(bytes - done, INT_MAX));
    STRATA_MPI(MPI_Bcast(p + done, n, MPI_BYTE, root, comm_));
    done += size_t(n);
  }
}

void MpiCommunicator::barrier() {
  if (size_ > 1) STRATA_MPI(MPI_Barrier(comm_));
}

// ---- Point to point. Messages above INT_MAX elements go as several messages with the same tag (MPI keeps
// their order between a pair), so both sides must pass the same count.

template <class T>
void MpiCommunicator::send_impl(const T* data, size_t count, int peer, int tag) {
  check_peer("send", peer, tag);
  do {
    const int n = int(std::min<size_t>(count, INT_MAX));
    STRATA_MPI(MPI_Send(data, n, mpi_type<T>(), peer, tag, comm_));
    data += n;
    count -= size_t(n);
  } while (count > 0);
}

template <class T>
void MpiCommunicator::recv_impl(T* data, size_t count, int peer, int tag) {
  check_peer("recv", peer, tag);
  do {
    const int n = int(std::min<size_t>(count, INT_MAX));
    MPI_Status status;
    STRATA_MPI(MPI_Recv(data, n, mpi_type<T>(), peer, tag, comm_, &status));
    int got = 0;
    STRATA_MPI(MPI_Get_count(&status, mpi_type<T>(), &got));
    STRATA_CHECK(got == n, "recv: expected {} {} from rank {} (tag {}), the message had {}", n, type_name<T>(), peer,
                 tag, got);
    data += n;
    count -= size_t(n);
  } while (count > 0);
}

template <class T>
void MpiCommunicator::sendrecv_impl(const T* send, size_t send_count, int dest, T* recv, size_t recv_count, int source,
                                    int tag) {
  check_peer("sendrecv (dest)", dest, tag);
  check_peer("sendrecv (source)", source, tag);
  do {
    const int ns = int(std::min<size_t>(send_count, INT_MAX)), nr = int(std::min<size_t>(recv_count, INT_MAX));
    MPI_Status status;
    STRATA_MPI(MPI_Sendrecv(send, ns, mpi_type<T>(), dest, tag, recv, nr, mpi_type<T>(), source, tag, comm_, &status));
    int got = 0;
    STRATA_MPI(MPI_Get_count(&status, mpi_type<T>(), &got));
    STRATA_CHECK(got == nr, "sendrecv: expected {} {} from rank {} (tag {}), the message had {}", nr, type_name<T>(),
                 source, tag, got);
    send += ns, recv += nr;
    send_count -= size_t(ns), recv_count -= size_t(nr);
  } while (send_count > 0 || recv_count > 0);
}

void MpiCommunicator::send(const float* d, size_t n, int peer, int tag) { send_impl(d, n, peer, tag); }
void MpiCommunicator::send(const double* d, size_t n, int peer, int tag) { send_impl(d, n, peer, tag); }
void MpiCommunicator::recv(float* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void MpiCommunicator::recv(double* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void MpiCommunicator::sendrecv(const float* s, size_t ns, int dest, float* r, size_t nr, int source, int tag) {
  sendrecv_impl(s, ns, dest, r, nr, source, tag);
}
void MpiCommunicator::sendrecv(const double* s, size_t ns, int dest, double* r, size_t nr, int source, int tag) {
  sendrecv_impl(s, ns, dest, r, nr, source, tag);
}

// ---- Non-blocking.

template <class T>
Request MpiCommunicator::all_reduce_async(T* data, size_t count) {
  check_count("all_reduce_sum_async", count);
  if (size_ == 1 || count == 0) return Request();
  Request::Handle h;
  STRATA_MPI(MPI_Iallreduce(MPI_IN_PLACE, data, int(count), mpi_type<T>(), MPI_SUM, comm_, &h.mpi));
  return Request(&kMpiOps, h);
}

template <class T>
Request MpiCommunicator::reduce_scatter_async(const T* send, T* recv, const int* counts) {
  size_t total = 0;
  for (int r = 0; r < size_; ++r) {
    STRATA_CHECK(counts[r] >= 0, "reduce_scatter_sum_async: counts[{}] = {} is negative", r, counts[r]);
    total += size_t(counts[r]);
  }
  check_count("reduce_scatter_sum_async", total);
  STRATA_CHECK(counts[rank_] == 0 || !overlaps(send, total * sizeof(T), recv, size_t(counts[rank_]) * sizeof(T)),
               "reduce_scatter_sum_async: the receive buffer overlaps the send buffer");
  if (size_ == 1) {
    if (counts[0] > 0) std::memcpy(recv, send, size_t(counts[0]) * sizeof(T));
    return Request();
  }
  Request::Handle h;
  STRATA_MPI(MPI_Ireduce_scatter(send, recv, counts, mpi_type<T>(), MPI_SUM, comm_, &h.mpi));
  return Request(&kMpiOps, h);
}

template <class T>
Request MpiCommunicator::isend_impl(const T* data, size_t count, int peer, int tag) {
  check_count("isend", count);
  check_peer("isend", peer, tag);
  Request::Handle h;
  STRATA_MPI(MPI_Isend(data, int(count), mpi_type<T>(), peer, tag, comm_, &h.mpi));
  return Request(&kMpiOps, h);
}

template <class T>
Request MpiCommunicator::irecv_impl(T* data, size_t count, int peer, int tag) {
  check_count("irecv", count);
  check_peer("irecv", peer, tag);
  Request::Handle h;
  STRATA_MPI(MPI_Irecv(data, int(count), mpi_type<T>(), peer, tag, comm_, &h.mpi));
  return Request(&kMpiOps, h);
}

Request MpiCommunicator::all_reduce_sum_async(float* d, size_t n) { return all_reduce_async(d, n); }
Request MpiCommunicator::all_reduce_sum_async(double* d, size_t n) { return all_reduce_async(d, n); }
Request MpiCommunicator::reduce_scatter_sum_async(const float* s, float* r, const int* counts) {
  return reduce_scatter_async(s, r, counts);
}
Request MpiCommunicator::reduce_scatter_sum_async(const double* s, double* r, const int* counts) {
  return reduce_scatter_async(s, r, counts);
}
Request MpiCommunicator::isend(const float* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request MpiCommunicator::isend(const double* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request MpiCommunicator::irecv(float* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }
Request MpiCommunicator::irecv(double* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }

void MpiCommunicator::wait_all(std::vector<Request>& requests) {
  std::vector<MPI_Request> handles;
  std::vector<Request*> owners;
  for (auto& r : requests)
    if (r.pending() && r.ops() == &kMpiOps) handles.push_back(r.handle().mpi), owners.push_back(&r);
  if (!handles.empty()) {
    const int rc = MPI_Waitall(int(handles.size()), handles.data(), MPI_STATUSES_IGNORE);
    // Completed or not, the handles MPI_Waitall returned are the current ones.
    for (size_t i = 0; i < owners.size(); ++i) owners[i]->handle().mpi = handles[i];
    if (rc != MPI_SUCCESS) throw_mpi_error(__FILE__, __LINE__, "MPI_Waitall", rc);
    for (auto* r : owners) r->mark_complete();
  }
  Communicator::wait_all(requests);  // any other backend's requests
}

}  // namespace strata
