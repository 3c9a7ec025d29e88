#include "comm/staged_communicator.hpp"

#include <cstdio>
#include <exception>
#include <vector>

#include "core/error.hpp"
#include "kernels/common.hpp"

namespace strata {
namespace {

template <class T>
using HostSpan = Kokkos::View<T*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
template <class T>
using DeviceSpan = Kokkos::View<T*, MemSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

// device[0, n) -> a new host vector (deep_copy fences the device first).
template <class T>
std::vector<T> to_host(const T* device, size_t n) {
  std::vector<T> host(n);
  if (n) Kokkos::deep_copy(HostSpan<T>(host.data(), n), DeviceSpan<const T>(device, n));
  return host;
}

template <class T>
void to_device(T* device, const T* host, size_t n) {
  if (n) Kokkos::deep_copy(DeviceSpan<T>(device, n), HostSpan<const T>(host, n));
}

// The bytes of device[0, n) on the host (the buffer a non-blocking operation keeps).
template <class T>
std::vector<std::byte> bytes_of(const T* device, size_t n) {
  return to_host(reinterpret_cast<const std::byte*>(device), n * sizeof(T));
}

// A non-blocking MPI operation on a host copy: the MPI request, the host buffer it uses, and where its result
// goes on the device once it completes (nothing for sends).
struct StagedOp {
  Request inner;
  std::vector<std::byte> host;
  void* device_result = nullptr;
  size_t result_offset = 0, result_bytes = 0;
};

StagedOp* op_of(Request& r) { return static_cast<StagedOp*>(r.handle().ptr); }

// After the MPI part completed: the result to the device, the host buffer freed, the request released.
void complete(Request& r) {
  StagedOp* op = op_of(r);
  to_device(static_cast<std::byte*>(op->device_result), op->host.data() + op->result_offset, op->result_bytes);
  delete op;
  r.mark_complete();
}

void staged_wait(Request& r) {
  StagedOp* op = op_of(r);
  if (op->inner.pending()) op->inner.ops()->wait(op->inner);
  complete(r);
}

bool staged_test(Request& r) {
  StagedOp* op = op_of(r);
  if (op->inner.pending() && !op->inner.ops()->test(op->inner)) return false;
  complete(r);
  return true;
}

void staged_release(Request& r, bool unwinding) noexcept {
  if (!unwinding) {
    try {
      staged_wait(r);
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "strata: error: a host-staged request failed while released: %s\n", e.what());
    }
  }
  delete op_of(r);  // the inner request abandons or completes itself likewise
  r.mark_complete();
}

const Request::Ops kStagedOps{"MPI (host-staged)", staged_wait, staged_test, staged_release};

Request wrap(std::unique_ptr<StagedOp> op) {
  Request::Handle h;
  h.ptr = op.release();
  return Request(&kStagedOps, h);
}

}  // namespace

template <class T>
void StagedCommunicator::all_reduce(T* data, size_t count, bool max) {
  if (size() == 1 || count == 0) return;
  auto host = to_host(data, count);
  max ? mpi_.all_reduce_max(host.data(), count) : mpi_.all_reduce_sum(host.data(), count);
  to_device(data, host.data(), count);
}

template <class T>
void StagedCommunicator::reduce_scatter(const T* send, T* recv, size_t recv_count) {
  auto host = to_host(send, recv_count * size_t(size()));
  std::vector<T> out(recv_count);
  mpi_.reduce_scatter_sum(host.data(), out.data(), recv_count);
  to_device(recv, out.data(), recv_count);
}

template <class T>
void StagedCommunicator::gather(const T* send, T* recv, size_t send_count) {
  auto host = to_host(send, send_count);
  std::vector<T> out(send_count * size_t(size()));
  mpi_.all_gather(host.data(), out.data(), send_count);
  to_device(recv, out.data(), out.size());
}

template <class T>
void StagedCommunicator::sendrecv_impl(const T* send, size_t send_count, int dest, T* recv, size_t recv_count,
                                       int source, int tag) {
  auto out = to_host(send, send_count);
  std::vector<T> in(recv_count);
  mpi_.sendrecv(out.data(), send_count, dest, in.data(), recv_count, source, tag);
  to_device(recv, in.data(), recv_count);
}

template <class T>
Request StagedCommunicator::all_reduce_async(T* data, size_t count) {
  if (size() == 1 || count == 0) return {};
  auto op = std::make_unique<StagedOp>();
  op->host = bytes_of(data, count);
  op->inner = mpi_.all_reduce_sum_async(reinterpret_cast<T*>(op->host.data()), count);
  op->device_result = data, op->result_bytes = count * sizeof(T);
  return wrap(std::move(op));
}

template <class T>
Request StagedCommunicator::reduce_scatter_async(const T* send, T* recv, const int* counts) {
  size_t total = 0;
  for (int r = 0; r < size(); ++r) total += size_t(counts[r]);
  if (size() == 1) {
    to_device(recv, to_host(send, total).data(), total);
    return {};
  }
  auto op = std::make_unique<StagedOp>();
  op->host = bytes_of(send, total);
  // MPI's result lands in this rank's block of the same host buffer (a separate receive buffer would do too).
  op->host.resize((total + size_t(counts[rank()])) * sizeof(T));
  T* host = reinterpret_cast<T*>(op->host.data());
  op->inner = mpi_.reduce_scatter_sum_async(host, host + total, counts);
  op->device_result = recv, op->result_offset = total * sizeof(T),
  op->result_bytes = size_t(counts[rank()]) * sizeof(T);
  return wrap(std::move(op));
}

template <class T>
Request StagedCommunicator::isend_impl(const T* data, size_t count, int peer, int tag) {
  auto op = std::make_unique<StagedOp>();
  op->host = bytes_of(data, count);
  op->inner = mpi_.isend(reinterpret_cast<const T*>(op->host.data()), count, peer, tag);
  return wrap(std::move(op));
}

template <class T>
Request StagedCommunicator::irecv_impl(T* data, size_t count, int peer, int tag) {
  auto op = std::make_unique<StagedOp>();
  op->host.resize(count * sizeof(T));
  op->inner = mpi_.irecv(reinterpret_cast<T*>(op->host.data()), count, peer, tag);
  op->device_result = data, op->result_bytes = count * sizeof(T);
  return wrap(std::move(op));
}

void StagedCommunicator::all_reduce_sum(float* d, size_t n) { all_reduce(d, n, false); }
void StagedCommunicator::all_reduce_sum(double* d, size_t n) { all_reduce(d, n, false); }
void StagedCommunicator::all_reduce_max(float* d, size_t n) { all_reduce(d, n, true); }
void StagedCommunicator::all_reduce_max(double* d, size_t n) { all_reduce(d, n, true); }
void StagedCommunicator::reduce_scatter_sum(const float* s, float* r, size_t n) { reduce_scatter(s, r, n); }
void StagedCommunicator::reduce_scatter_sum(const double* s, double* r, size_t n) { reduce_scatter(s, r, n); }
void StagedCommunicator::all_gather(const float* s, float* r, size_t n) { gather(s, r, n); }
void StagedCommunicator::all_gather(const double* s, double* r, size_t n) { gather(s, r, n); }

void StagedCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (size() == 1 || bytes == 0) return;
  auto host = to_host(static_cast<const std::byte*>(data), bytes);
  mpi_.broadcast(host.data(), bytes, root);
  to_device(static_cast<std::byte*>(data), host.data(), bytes);
}

template <class T>
void StagedCommunicator::recv_impl(T* data, size_t count, int peer, int tag) {
  std::vector<T> host(count);
  mpi_.recv(host.data(), count, peer, tag);
  to_device(data, host.data(), count);
}

void StagedCommunicator::send(const float* d, size_t n, int peer, int tag) {
  mpi_.send(to_host(d, n).data(), n, peer, tag);
}
void StagedCommunicator::send(const double* d, size_t n, int peer, int tag) {
  mpi_.send(to_host(d, n).data(), n, peer, tag);
}
void StagedCommunicator::recv(float* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void StagedCommunicator::recv(double* d, size_t n, int peer, int tag) { recv_impl(d, n, peer, tag); }
void StagedCommunicator::sendrecv(const float* s, size_t sn, int dest, float* r, size_t rn, int source, int tag) {
  sendrecv_impl(s, sn, dest, r, rn, source, tag);
}
void StagedCommunicator::sendrecv(const double* s, size_t sn, int dest, double* r, size_t rn, int source, int tag) {
  sendrecv_impl(s, sn, dest, r, rn, source, tag);
}

Request StagedCommunicator::all_reduce_sum_async(float* d, size_t n) { return all_reduce_async(d, n); }
Request StagedCommunicator::all_reduce_sum_async(double* d, size_t n) { return all_reduce_async(d, n); }
Request StagedCommunicator::reduce_scatter_sum_async(const float* s, float* r, const int* c) {
  return reduce_scatter_async(s, r, c);
}
Request StagedCommunicator::reduce_scatter_sum_async(const double* s, double* r, const int* c) {
  return reduce_scatter_async(s, r, c);
}
Request StagedCommunicator::isend(const float* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request StagedCommunicator::isend(const double* d, size_t n, int peer, int tag) { return isend_impl(d, n, peer, tag); }
Request StagedCommunicator::irecv(float* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }
Request StagedCommunicator::irecv(double* d, size_t n, int peer, int tag) { return irecv_impl(d, n, peer, tag); }

}  // namespace strata
