#pragma once
// NCCL implementation of Communicator for device buffers (DESIGN.md principle 5), built only with CUDA.
#ifdef STRATA_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include "comm/communicator.hpp"

namespace strata {

// Over the same ranks, in the same order, as the MpiCommunicator it is created from. Every pointer is
// device memory of the CUDA device that was current at construction (set it per rank first, e.g.
// cudaSetDevice(local_rank % device_count)). Operations run on a stream owned here:
// - blocking calls enqueue and then wait for the stream (polling NCCL's asynchronous error state, so a
//   failed peer raises strata::Error instead of hanging);
// - the *_async/isend/irecv calls return a Request completed by an event recorded after the operation;
// - every operation is ordered after the work enqueued so far on Kokkos' CUDA stream (where Strata's kernels
//   and cuBLAS run): an event, no host fence; kernels on any other stream must be fenced by the caller;
// NCCL has no tags: tags are checked (>= 0) and ignored; messages between a pair match in issue order.
// Operations on one stream run one after another, so an isend that waits for its peer blocks the irecv
// issued after it: exchanges (rings, pipeline send-forward/receive-backward) go through sendrecv, which
// groups the send and the receive. Requests must complete before the communicator is destroyed.
// Size-1 groups make no NCCL call (reduce_scatter/all_gather copy device to device).
class NcclCommunicator final : public Communicator {
 public:
  // Collective over mpi's ranks: rank 0 creates the NCCL unique id, MPI broadcasts it.
  explicit NcclCommunicator(MpiCommunicator& mpi);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  ncclComm_t comm() const { return comm_; }
  // Waits for everything enqueued on stream(), raising NCCL's asynchronous errors.
  void synchronize();

  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count) override;
  void all_reduce_max(float* data, size_t count) override;
  void all_reduce_max(double* data, size_t count) override;
  void reduce_scatter_sum(const float* send, float* recv, size_t recv_count) override;
  void reduce_scatter_sum(const double* send, double* recv, size_t recv_count) override;
  void all_gather(const float* send, float* recv, size_t send_count) override;
  void all_gather(const double* send, double* recv, size_t send_count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;

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
  // One ncclReduce per rank with a non-empty block, rooted at that rank, in one group.
  Request reduce_scatter_sum_async(const float* send, float* recv, const int* counts) override;
  Request reduce_scatter_sum_async(const double* send, double* recv, const int* counts) override;
  Request isend(const float* data, size_t count, int peer, int tag) override;
  Request isend(const double* data, size_t count, int peer, int tag) override;
  Request irecv(float* data, size_t count, int peer, int tag) override;
  Request irecv(double* data, size_t count, int peer, int tag) override;

 private:
  template <class T>
  void all_reduce(T* data, size_t count, ncclRedOp_t op);
  template <class T>
  void reduce_scatter(const T* send, T* recv, size_t recv_count);
  template <class T>
  void gather(const T* send, T* recv, size_t send_count);
  template <class T>
  void send_impl(const T* data, size_t count, int peer, int tag);
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
  void check_peer(const char* what, int peer, int tag) const;
  Request record();           // an event after everything enqueued so far
  void order_after_kokkos();  // this stream waits for the work enqueued on Kokkos' stream so far

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  float* scratch_ = nullptr;  // one float for barrier()
  cudaEvent_t kokkos_done_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace strata
#endif  // STRATA_HAVE_CUDA
