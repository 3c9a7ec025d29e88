#pragma once
// MPI for device buffers through host copies: for GPU builds without NCCL, or MPI libraries that are not
// CUDA-aware (parallel.device_comm = "staged"). Every buffer is memory of Kokkos' default memory space; each
// operation copies its input to a host buffer (deep_copy, which fences the device first), runs the MPI
// operation there, and copies the result back. Non-blocking calls keep their host buffer in the Request and copy
// back when it completes, so pipeline sends still overlap. On host memory the copies are memcpys (the path CI
// tests).
#include "comm/communicator.hpp"

namespace strata {

class StagedCommunicator final : public Communicator {
 public:
  // Over mpi's ranks; mpi must outlive this.
  explicit StagedCommunicator(MpiCommunicator& mpi) : mpi_(mpi) {}

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }

  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count) override;
  void all_reduce_max(float* data, size_t count) override;
  void all_reduce_max(double* data, size_t count) override;
  void reduce_scatter_sum(const float* send, float* recv, size_t recv_count) override;
  void reduce_scatter_sum(const double* send, double* recv, size_t recv_count) override;
  void all_gather(const float* send, float* recv, size_t send_count) override;
  void all_gather(const double* send, double* recv, size_t send_count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override { mpi_.barrier(); }

  void send(const float* data, size_t count, int peer, int tag) override;
  void send(const double* data, size_t count, int peer, int tag) override;
  void recv(float* data, size_t count, int peer, int tag) override;
  void recv(double* data, size_t count, int peer, int tag) override;
  void sendrecv(const float* send, size_t send_count, int dest, float* recv, size_t recv_count, int source,
                int tag) override;
  void sendrecv(const double* send, size_t send_count, int dest, double* recv, size_t recv_count, int source,
                int tag) override;

  Request all_reduce_sum_async(float* data, size_t count) override;
  Request all_reduce_sum_async(double* data, size_t count) override;
  Request reduce_scatter_sum_async(const float* send, float* recv, const int* counts) override;
  Request reduce_scatter_sum_async(const double* send, double* recv, const int* counts) override;
  Request isend(const float* data, size_t count, int peer, int tag) override;
  Request isend(const double* data, size_t count, int peer, int tag) override;
  Request irecv(float* data, size_t count, int peer, int tag) override;
  Request irecv(double* data, size_t count, int peer, int tag) override;

 private:
  template <class T>
  void all_reduce(T* data, size_t count, bool max);
  template <class T>
  void reduce_scatter(const T* send, T* recv, size_t recv_count);
  template <class T>
  void gather(const T* send, T* recv, size_t send_count);
  template <class T>
  void recv_impl(T* data, size_t count, int peer, int tag);
  template <class T>
  void sendrecv_impl(const T* send, size_t send_count, int dest, T* recv, size_t recv_count, int source, int tag);
  template <class T>
  Request all_reduce_async(T* data, size_t count);
  template <class T>
  Request reduce_scatter_async(const T* send, T* recv, const int* counts);
  template <class T>
  Request isend_impl(const T* data, size_t count, int peer, int tag);
  template <class T>
  Request irecv_impl(T* data, size_t count, int peer, int tag);

  MpiCommunicator& mpi_;
};

}  // namespace strata
