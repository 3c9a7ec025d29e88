#pragma once
// Communication over one group of ranks (DESIGN.md principles 5-8). An interface so that device buffers
// go through NCCL when built with CUDA and host buffers through MPI. Every rank of the group makes the
// same collective calls in the same order. Size-1 groups cost nothing: collectives return at once (or
// copy, for reduce_scatter/all_gather) without any MPI call.
#include <mpi.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "comm/request.hpp"

namespace strata {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // ---- Blocking collectives: return when the buffers may be used again.
  // In place: every rank ends with the element-wise sum / maximum.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;
  virtual void all_reduce_max(float* data, size_t count) = 0;
  virtual void all_reduce_max(double* data, size_t count) = 0;
  // send holds size() blocks of recv_count elements; rank r receives the element-wise sum over ranks of
  // block r. In place allowed when recv == send + rank() * recv_count (the rest of send is left as it was).
  virtual void reduce_scatter_sum(const float* send, float* recv, size_t recv_count) = 0;
  virtual void reduce_scatter_sum(const double* send, double* recv, size_t recv_count) = 0;
  // recv (size() * send_count elements) = the ranks' send blocks concatenated in rank order.
  // In place allowed when send == recv + rank() * send_count.
  virtual void all_gather(const float* send, float* recv, size_t send_count) = 0;
  virtual void all_gather(const double* send, double* recv, size_t send_count) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;

  // ---- Blocking point to point (peer = rank in this group, tag >= 0). A ring where every rank sends
  // before it receives may deadlock for large messages: use sendrecv or isend/irecv + wait_all.
  virtual void send(const float* data, size_t count, int peer, int tag) = 0;
  virtual void send(const double* data, size_t count, int peer, int tag) = 0;
  virtual void recv(float* data, size_t count, int peer, int tag) = 0;
  virtual void recv(double* data, size_t count, int peer, int tag) = 0;
  // Sends to dest and receives from source at once (never deadlocks in a ring or a pair exchange).
  virtual void sendrecv(const float* send, size_t send_count, int dest, float* recv, size_t recv_count, int source,
                        int tag) = 0;
  virtual void sendrecv(const double* send, size_t send_count, int dest, double* recv, size_t recv_count, int source,
                        int tag) = 0;

  // ---- Non-blocking: the buffer must stay alive and untouched until the request completes.
  virtual Request all_reduce_sum_async(float* data, size_t count) = 0;
  virtual Request all_reduce_sum_async(double* data, size_t count) = 0;
  // send holds size() consecutive blocks, block r of counts[r] elements; rank r receives in recv the
  // element-wise sum over ranks of block r (counts may differ and be 0). counts (size() entries) must stay
  // alive, like the buffers, until the request completes; recv must not overlap send.
  virtual Request reduce_scatter_sum_async(const float* send, float* recv, const int* counts) = 0;
  virtual Request reduce_scatter_sum_async(const double* send, double* recv, const int* counts) = 0;
  virtual Request isend(const float* data, size_t count, int peer, int tag) = 0;
  virtual Request isend(const double* data, size_t count, int peer, int tag) = 0;
  virtual Request irecv(float* data, size_t count, int peer, int tag) = 0;
  virtual Request irecv(double* data, size_t count, int peer, int tag) = 0;

  // Completion. A request knows its backend, so these accept requests of any communicator.
  virtual void wait(Request& request);
  // Progresses communication; true once complete (then the request is released and no longer pending).
  virtual bool test(Request& request);
  virtual void wait_all(std::vector<Request>& requests);
};

// MPI implementation over its own duplicate of the communicator it is given (never MPI_COMM_WORLD itself),
// freed on destruction. Host buffers. Counts above INT_MAX are split into several MPI calls where the
// operation allows it (all_reduce_*, broadcast, send, recv, sendrecv); the others (reduce_scatter_sum,
// all_gather, the non-blocking calls) reject them with strata::Error on every group size.
class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm parent);
  // Takes ownership of an already created communicator (e.g. from MPI_Comm_split).
  static std::unique_ptr<MpiCommunicator> adopt(MPI_Comm owned);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm comm() const { return comm_; }

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
  Request reduce_scatter_sum_async(const float* send, float* recv, const int* counts) override;
  Request reduce_scatter_sum_async(const double* send, double* recv, const int* counts) override;
  Request isend(const float* data, size_t count, int peer, int tag) override;
  Request isend(const double* data, size_t count, int peer, int tag) override;
  Request irecv(float* data, size_t count, int peer, int tag) override;
  Request irecv(double* data, size_t count, int peer, int tag) override;

  // One MPI_Waitall for the MPI requests among them.
  void wait_all(std::vector<Request>& requests) override;

 private:
  MpiCommunicator() = default;
  void describe();
  template <class T>
  void all_reduce(T* data, size_t count, MPI_Op op);
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

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace strata
