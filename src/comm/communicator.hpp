#pragma once
// Collective communication over one group of ranks (DESIGN.md principle 5). An interface so that device
// buffers can go through NCCL when built with CUDA, host buffers through MPI; size-1 groups cost nothing.
#include <mpi.h>

#include <cstddef>
#include <memory>

namespace strata {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place, every rank ends with the element-wise sum.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

// MPI implementation over its own duplicate of the communicator it is given (never MPI_COMM_WORLD itself),
// freed on destruction.
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
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;

 private:
  MpiCommunicator() = default;
  void describe();
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace strata
