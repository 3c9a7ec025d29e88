// NCCL communicator: device buffers, one owned stream, ids broadcast over MPI. Built only with CUDA.
#ifdef STRATA_HAVE_CUDA
#include "comm/nccl_communicator.hpp"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <thread>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include "core/error.hpp"

namespace strata {
namespace {

#define STRATA_CUDA(call)                                                                 \
  do {                                                                                    \
    cudaError_t strata_cuda_rc_ = (call);                                                 \
    STRATA_CHECK(strata_cuda_rc_ == cudaSuccess, "CUDA call {} failed: {} ({})", #call,   \
                 cudaGetErrorName(strata_cuda_rc_), cudaGetErrorString(strata_cuda_rc_)); \
  } while (0)

#define STRATA_NCCL(call)                                                               \
  do {                                                                                  \
    ncclResult_t strata_nccl_rc_ = (call);                                              \
    STRATA_CHECK(strata_nccl_rc_ == ncclSuccess, "NCCL call {} failed: {} ({})", #call, \
                 ncclGetErrorString(strata_nccl_rc_), ncclGetLastError(nullptr));       \
  } while (0)

template <class T>
ncclDataType_t nccl_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  return std::is_same_v<T, float> ? ncclFloat32 : ncclFloat64;
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return x < y + b_bytes && y < x + a_bytes;
}

// NCCL needs device (or managed) memory; a host pointer would fail inside NCCL with a vaguer message.
void check_device(const char* what, const void* p) {
  cudaPointerAttributes attr{};
  STRATA_CUDA(cudaPointerGetAttributes(&attr, p));
  STRATA_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged,
               "{}: {} is not device memory (NcclCommunicator takes device pointers; host buffers go through "
               "MpiCommunicator)",
               what, p);
}

// Polls `query` (cudaEventQuery / cudaStreamQuery) until done, raising NCCL's asynchronous errors (a peer
// that failed) instead of waiting forever.
template <class Query>
void wait_for(ncclComm_t comm, const char* what, Query query) {
  for (;;) {
    const cudaError_t e = query();
    if (e == cudaSuccess) return;
    STRATA_CHECK(e == cudaErrorNotReady, "CUDA {} failed: {} ({})", what, cudaGetErrorName(e), cudaGetErrorString(e));
    ncclResult_t async = ncclSuccess;
    STRATA_NCCL(ncclCommGetAsyncError(comm, &async));
    STRATA_CHECK(async == ncclSuccess || async == ncclInProgress,
                 "NCCL failed asynchronously while waiting for {}: {} ({})", what, ncclGetErrorString(async),
                 ncclGetLastError(comm));
    std::this_thread::yield();
  }
}

// What a NCCL Request's handle points to.
struct Pending {
  cudaEvent_t event;
  ncclComm_t comm;
};

void discard(Request& r) noexcept {
  auto* p = static_cast<Pending*>(r.handle().ptr);
  if (p) {
    cudaEventDestroy(p->event);  // destruction is deferred by CUDA until the event completes
    delete p;
  }
  r.mark_complete();
}

void nccl_wait(Request& r) {
  auto* p = static_cast<Pending*>(r.handle().ptr);
  wait_for(p->comm, "cudaEventQuery (a NCCL request)", [p] { return cudaEventQuery(p->event); });
  discard(r);
}

bool nccl_test(Request& r) {
  auto* p = static_cast<Pending*>(r.handle().ptr);
  const cudaError_t e = cudaEventQuery(p->event);
  if (e == cudaSuccess) {
    discard(r);
    return true;
  }
  STRATA_CHECK(e == cudaErrorNotReady, "CUDA cudaEventQuery (a NCCL request) failed: {} ({})", cudaGetErrorName(e),
               cudaGetErrorString(e));
  ncclResult_t async = ncclSuccess;
  STRATA_NCCL(ncclCommGetAsyncError(p->comm, &async));
  STRATA_CHECK(async == ncclSuccess || async == ncclInProgress, "NCCL failed asynchronously: {} ({})",
               ncclGetErrorString(async), ncclGetLastError(p->comm));
  return false;
}

void nccl_release(Request& r, bool unwinding) noexcept {
  if (!unwinding) {
    try {
      nccl_wait(r);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[rank %d] strata: a NCCL request completed by its destructor failed: %s\n", error_rank(),
                   e.what());
    }
  }
  discard(r);
}

const Request::Ops kNcclOps{"NCCL", nccl_wait, nccl_test, nccl_release};

// Rank 0's NCCL id, or why rank 0 could not make one (so the other ranks throw too instead of hanging).
struct IdMessage {
  int ok = 0;
  ncclUniqueId id{};
  char error[256] = {0};
};

}  // namespace

NcclCommunicator::NcclCommunicator(MpiCommunicator& mpi) : rank_(mpi.rank()), size_(mpi.size()) {
  STRATA_CUDA(cudaGetDevice(&device_));
  IdMessage message;
  if (rank_ == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&message.id);
    message.ok = rc == ncclSuccess;
    if (!message.ok) std::snprintf(message.error, sizeof message.error, "%s", ncclGetErrorString(rc));
  }
  mpi.broadcast(&message, sizeof message, 0);
  STRATA_CHECK(message.ok, "NCCL call ncclGetUniqueId failed on rank 0 of the group: {}", message.error);
  STRATA_CUDA(cudaStreamCreate(&stream_));
  STRATA_CUDA(cudaMalloc(reinterpret_cast<void**>(&scratch_), sizeof(float)));
  STRATA_NCCL(ncclCommInitRank(&comm_, size_, message.id, rank_));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) ncclCommDestroy(comm_);
  if (scratch_) cudaFree(scratch_);
  if (stream_) cudaStreamDestroy(stream_);
  if (kokkos_done_) cudaEventDestroy(kokkos_done_);
}

void NcclCommunicator::order_after_kokkos() {
#ifdef KOKKOS_ENABLE_CUDA
  // The buffers were written by kernels on Kokkos' stream: this stream waits for them on the device (no host
  // fence), so gradient buckets still leave while backward runs.
  if (!kokkos_done_) STRATA_CUDA(cudaEventCreateWithFlags(&kokkos_done_, cudaEventDisableTiming));
  STRATA_CUDA(cudaEventRecord(kokkos_done_, Kokkos::Cuda().cuda_stream()));
  STRATA_CUDA(cudaStreamWaitEvent(stream_, kokkos_done_, 0));
#endif
}

void NcclCommunicator::synchronize() {
  wait_for(comm_, "cudaStreamQuery (the NCCL stream)", [this] { return cudaStreamQuery(stream_); });
}

void NcclCommunicator::check_peer(const char* what, int peer, int tag) const {
  STRATA_CHECK(peer >= 0 && peer < size_, "{}: peer rank {} outside a group of {} ranks", what, peer, size_);
  STRATA_CHECK(tag >= 0, "{}: tag {} must be >= 0", what, tag);
}

Request NcclCommunicator::record() {
  auto* p = new Pending{nullptr, comm_};
  const cudaError_t e = cudaEventCreateWithFlags(&p->event, cudaEventDisableTiming);
  if (e != cudaSuccess) delete p;
  STRATA_CHECK(e == cudaSuccess, "CUDA call cudaEventCreateWithFlags failed: {} ({})", cudaGetErrorName(e),
               cudaGetErrorString(e));
  Request::Handle h;
  h.ptr = p;
  Request r(&kNcclOps, h);  // owns the event from here on
  STRATA_CUDA(cudaEventRecord(p->event, stream_));
  return r;
}

// ---- Collectives.

template <class T>
void NcclCommunicator::all_reduce(T* data, size_t count, ncclRedOp_t op) {
  order_after_kokkos();
  if (size_ == 1 || count == 0) return;
  check_device("all_reduce", data);
  STRATA_NCCL(ncclAllReduce(data, data, count, nccl_type<T>(), op, comm_, stream_));
  synchronize();
}

void NcclCommunicator::all_reduce_sum(float* d, size_t n) { all_reduce(d, n, ncclSum); }
void NcclCommunicator::all_reduce_sum(double* d, size_t n) { all_reduce(d, n, ncclSum); }
void NcclCommunicator::all_reduce_max(float* d, size_t n) { all_reduce(d, n, ncclMax); }
void NcclCommunicator::all_reduce_max(double* d, size_t n) { all_reduce(d, n, ncclMax); }

template <class T>
void NcclCommunicator::reduce_scatter(const T* send, T* recv, size_t n) {
  order_after_kokkos();
  if (n == 0) return;
  const bool in_place = recv == send + size_t(rank_) * n;
  STRATA_CHECK(in_place || !overlaps(send, size_t(size_) * n * sizeof(T), recv, n * sizeof(T)),
               "reduce_scatter_sum: the receive buffer overlaps the send buffer other than at this rank's block "
               "(in place means recv == send + rank * recv_count)");
  check_device("reduce_scatter_sum (send)", send);
  check_device("reduce_scatter_sum (recv)", recv);
  if (size_ == 1) {
    if (!in_place) STRATA_CUDA(cudaMemcpyAsync(recv, send, n * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
  } else {
    STRATA_NCCL(ncclReduceScatter(send, recv, n, nccl_type<T>(), ncclSum, comm_, stream_));
  }
  synchronize();
}

void NcclCommunicator::reduce_scatter_sum(const float* s, float* r, size_t n) { reduce_scatter(s, r, n); }
void NcclCommunicator::reduce_scatter_sum(const double* s, double* r, size_t n) { reduce_scatter(s, r, n); }

template <class T>
void NcclCommunicator::gather(const T* send, T* recv, size_t n) {
  order_after_kokkos();
  if (n == 0) return;
  const bool in_place = send == recv + size_t(rank_) * n;
  STRATA_CHECK(in_place || !overlaps(send, n * sizeof(T), recv, size_t(size_) * n * sizeof(T)),
               "all_gather: the send buffer overlaps the receive buffer other than at this rank's block "
               "(in place means send == recv + rank * send_count)");
  check_device("all_gather (send)", send);
  check_device("all_gather (recv)", recv);
  if (size_ == 1) {
    if (!in_place) STRATA_CUDA(cudaMemcpyAsync(recv, send, n * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
  } else {
    STRATA_NCCL(ncclAllGather(send, recv, n, nccl_type<T>(), comm_, stream_));
  }
  synchronize();
}

void NcclCommunicator::all_gather(const float* s, float* r, size_t n) { gather(s, r, n); }
void NcclCommunicator::all_gather(const double* s, double* r, size_t n) { gather(s, r, n); }

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  order_after_kokkos();
  STRATA_CHECK(root >= 0 && root < size_, "broadcast: root {} outside a group of {} ranks", root, size_);
  if (size_ == 1 || bytes == 0) return;
  check_device("broadcast", data);
  STRATA_NCCL(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_));
  synchronize();
}

void NcclCommunicator::barrier() {
  if (size_ == 1) return;
  STRATA_NCCL(ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, comm_, stream_));
  synchronize();
}

// ---- Point to point.

template <class T>
void NcclCommunicator::send_impl(const T* data, size_t count, int peer, int tag) {
  order_after_kokkos();
  check_peer("send", peer, tag);
  check_device("send", data);
  STRATA_NCCL(ncclSend(data, count, nccl_type<T>(), peer, comm_, stream_));
  synchronize();
}

template <class T>
void NcclCommunicator::recv_impl(T* data, size_t count, int peer, int tag) {
  order_after_kokkos();
  check_peer("recv", peer, tag);
  check_device("recv", data);
  STRATA_NCCL(ncclRecv(data, count, nccl_type<T>(), peer, comm_, stream_));
  synchronize();
}

template <class T>
void NcclCommunicator::sendrecv_impl(const T* send, size_t send_count, int dest, T* recv, size_t recv_count, int source,
                                     int tag) {
  order_after_kokkos();
  check_peer("sendrecv (dest)", dest, tag);
  check_peer("sendrecv (source)", source, tag);
  if (send_count) check_device("sendrecv (send)", send);
  if (recv_count) check_device("sendrecv (recv)", recv);
  STRATA_NCCL(ncclGroupStart());
  const ncclResult_t s = send_count ? ncclSend(send, send_count, nccl_type<T>(), dest, comm_, stream_) : ncclSuccess;
  const ncclResult_t r = recv_count ? ncclRecv(recv, recv_count, nccl_type<T>(), source, comm_, stream_) : ncclSuccess;
  STRATA_NCCL(ncclGroupEnd());  // always closes the group, even when an enqueue failed
  STRATA_NCCL(s);
  STRATA_NCCL(r);
  synchronize();
}

void NcclCommunicator::send(const float* d, size_t n, int peer, int tag) { send_impl(d, n, peer, tag); }
void NcclCommunicator::send(const double* d, size_t n, int peer, int tag) { send_impl(d, n, peer, tag); }
void NcclCommunicator::recv(float* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void NcclCommunicator::recv(double* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void NcclCommunicator::sendrecv(const float* s, size_t ns, int dest, float* r, size_t nr, int source, int tag) {
  sendrecv_impl(s, ns, dest, r, nr, source, tag);
}
void NcclCommunicator::sendrecv(const double* s, size_t ns, int dest, double* r, size_t nr, int source, int tag) {
  sendrecv_impl(s, ns, dest, r, nr, source, tag);
}

// ---- Non-blocking: enqueue, then an event marks completion.

template <class T>
Request NcclCommunicator::all_reduce_async(T* data, size_t count) {
  order_after_kokkos();
  if (size_ == 1 || count == 0) return Request();
  check_device("all_reduce_sum_async", data);
  STRATA_NCCL(ncclAllReduce(data, data, count, nccl_type<T>(), ncclSum, comm_, stream_));
  return record();
}

template <class T>
Request NcclCommunicator::reduce_scatter_async(const T* send, T* recv, const int* counts) {
  order_after_kokkos();
  size_t offset = 0, total = 0;
  for (int r = 0; r < size_; ++r) total += size_t(std::max(counts[r], 0));
  if (total > 0) check_device("reduce_scatter_sum_async (send)", send);
  if (counts[rank_] > 0) check_device("reduce_scatter_sum_async (recv)", recv);
  if (size_ == 1) {
    if (counts[0] > 0) {
      STRATA_CUDA(cudaMemcpyAsync(recv, send, size_t(counts[0]) * sizeof(T), cudaMemcpyDeviceToDevice, stream_));
    }
    return record();
  }
  STRATA_NCCL(ncclGroupStart());
  ncclResult_t first_error = ncclSuccess;
  for (int r = 0; r < size_; ++r) {
    STRATA_CHECK(counts[r] >= 0, "reduce_scatter_sum_async: counts[{}] = {} is negative", r, counts[r]);
    if (counts[r] == 0) continue;
    const ncclResult_t rc = ncclReduce(send + offset, r == rank_ ? recv : nullptr, size_t(counts[r]), nccl_type<T>(),
                                       ncclSum, r, comm_, stream_);
    if (first_error == ncclSuccess) first_error = rc;
    offset += size_t(counts[r]);
  }
  STRATA_NCCL(ncclGroupEnd());  // always closes the group, even when an enqueue failed
  STRATA_NCCL(first_error);
  return record();
}

template <class T>
Request NcclCommunicator::isend_impl(const T* data, size_t count, int peer, int tag) {
  order_after_kokkos();
  check_peer("isend", peer, tag);
  check_device("isend", data);
  STRATA_NCCL(ncclSend(data, count, nccl_type<T>(), peer, comm_, stream_));
  return record();
}

template <class T>
Request NcclCommunicator::irecv_impl(T* data, size_t count, int peer, int tag) {
  order_after_kokkos();
  check_peer("irecv", peer, tag);
  check_device("irecv", data);
  STRATA_NCCL(ncclRecv(data, count, nccl_type<T>(), peer, comm_, stream_));
  return record();
}

Request NcclCommunicator::all_reduce_sum_async(float* d, size_t n) { return all_reduce_async(d, n); }
Request NcclCommunicator::all_reduce_sum_async(double* d, size_t n) { return all_reduce_async(d, n); }
Request NcclCommunicator::reduce_scatter_sum_async(const float* s, float* r, const int* counts) {
  return reduce_scatter_async(s, r, counts);
}
Request NcclCommunicator::reduce_scatter_sum_async(const double* s, double* r, const int* counts) {
  return reduce_scatter_async(s, r, counts);
}
Request NcclCommunicator::isend(const float* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request NcclCommunicator::isend(const double* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request NcclCommunicator::irecv(float* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }
Request NcclCommunicator::irecv(double* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }

}  // namespace strata
#endif  // STRATA_HAVE_CUDA
