// NcclCommunicator on one rank. Needs a CUDA device: skips with the reason otherwise (the CUDA preset builds
// and links it everywhere; it runs where a GPU is present). Multi-rank NCCL runs belong under tests/mpi.
#include "comm/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <mpi.h>
#include <nccl.h>
#include "cuda_device.hpp"

#include <vector>

#include "core/error.hpp"

namespace strata {
namespace {

using strata::testing::have_cuda_device;

template <class T>
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  std::vector<T> host() const {
    std::vector<T> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  T* ptr = nullptr;
  size_t n;
};

template <class T>
void check_one_rank(NcclCommunicator& nccl) {
  std::vector<T> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = T(i) * T(0.5) - T(3);

  // all_reduce of one rank: the values themselves, through the interface (no NCCL call at size 1)...
  DeviceBuffer<T> data(values);
  nccl.all_reduce_sum(data.ptr, data.n);
  nccl.all_reduce_max(data.ptr, data.n);
  EXPECT_EQ(data.host(), values);
  Request r = nccl.all_reduce_sum_async(data.ptr, data.n);
  nccl.wait(r);
  EXPECT_EQ(data.host(), values);

  // ...and through the NCCL communicator itself, which must be usable.
  DeviceBuffer<T> out(std::vector<T>(values.size(), T(-1)));
  const ncclDataType_t type = std::is_same_v<T, float> ? ncclFloat32 : ncclFloat64;
  ASSERT_EQ(ncclAllReduce(data.ptr, out.ptr, data.n, type, ncclSum, nccl.comm(), nccl.stream()), ncclSuccess);
  nccl.synchronize();
  EXPECT_EQ(out.host(), values);

  // reduce_scatter/all_gather on one rank copy device to device.
  DeviceBuffer<T> copy(std::vector<T>(values.size(), T(-1)));
  nccl.reduce_scatter_sum(data.ptr, copy.ptr, data.n);
  EXPECT_EQ(copy.host(), values);
  DeviceBuffer<T> gathered(std::vector<T>(values.size(), T(-1)));
  nccl.all_gather(data.ptr, gathered.ptr, data.n);
  EXPECT_EQ(gathered.host(), values);

  // A grouped send/receive to itself goes through NCCL.
  DeviceBuffer<T> received(std::vector<T>(values.size(), T(-1)));
  nccl.sendrecv(data.ptr, data.n, 0, received.ptr, received.n, 0, 0);
  EXPECT_EQ(received.host(), values);
}

TEST(NcclCommunicator, OneRankAllReduceAndCopies) {
  std::string why;
  if (!have_cuda_device(why)) GTEST_SKIP() << why;
  MpiCommunicator mpi(MPI_COMM_WORLD);
  ASSERT_EQ(mpi.size(), 1) << "unit tests run as one process";
  NcclCommunicator nccl(mpi);
  EXPECT_EQ(nccl.size(), 1);
  EXPECT_EQ(nccl.rank(), 0);
  check_one_rank<float>(nccl);
  check_one_rank<double>(nccl);
  nccl.barrier();

  // Host memory is refused with a clear error, not handed to NCCL.
  std::vector<float> host(8, 1.0f);
  try {
    nccl.reduce_scatter_sum(host.data(), host.data() + 4, 4);
    FAIL() << "expected strata::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not device memory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nccl.send(static_cast<float*>(nullptr), 1, 1, 0), Error);  // no rank 1
}

}  // namespace
}  // namespace strata
