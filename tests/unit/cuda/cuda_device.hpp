#pragma once
// Whether a CUDA device can run the tests here; `why` says what is missing (for GTEST_SKIP).
#include <cuda_runtime.h>

#include <string>

namespace strata::testing {

inline bool have_cuda_device(std::string& why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    why = std::string("no CUDA device: cudaGetDeviceCount: ") + cudaGetErrorString(err);
    return false;
  }
  if (count == 0) {
    why = "no CUDA device present";
    return false;
  }
  return true;
}

}  // namespace strata::testing
