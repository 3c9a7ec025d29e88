// cuBLAS GEMM path against the host CBLAS path on the same inputs. Needs a CUDA device: skips with the
// reason otherwise (the CUDA preset builds and links it everywhere; it runs where a GPU is present).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "cuda_device.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gemm.hpp"

namespace strata {
namespace {

using strata::testing::have_cuda_device;

template <class T>
T* to_device(const std::vector<T>& host) {
  T* ptr = nullptr;
  EXPECT_EQ(cudaMalloc(&ptr, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return ptr;
}

template <class T>
void check_against_host(Trans ta, Trans tb) {
  const int m = 37, n = 29, k = 23;
  const int lda = (ta == Trans::No ? k : m) + 3, ldb = (tb == Trans::No ? n : k) + 2, ldc = n + 5;
  std::mt19937 gen(7);
  std::normal_distribution<double> dist;
  std::vector<T> a(size_t(ta == Trans::No ? m : k) * lda), b(size_t(tb == Trans::No ? k : n) * ldb), c(size_t(m) * ldc);
  for (auto* v : {&a, &b, &c})
    for (auto& x : *v) x = T(dist(gen));
  std::vector<T> expected = c;
  GemmShape s{ta, tb, m, n, k, lda, ldb, ldc};
  gemm_host<T>(s, T(0.7), a.data(), b.data(), T(0.3), expected.data());
  T *da = to_device(a), *db = to_device(b), *dc = to_device(c);
  gemm_cublas<T>(s, T(0.7), da, db, T(0.3), dc);
  std::vector<T> got(c.size());
  ASSERT_EQ(cudaMemcpy(got.data(), dc, got.size() * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  double err = 0, norm = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      const double d = double(got[size_t(i) * ldc + j]) - double(expected[size_t(i) * ldc + j]);
      err += d * d;
      norm += double(expected[size_t(i) * ldc + j]) * double(expected[size_t(i) * ldc + j]);
    }
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  EXPECT_LT(std::sqrt(err / norm), tolerance);
}

TEST(GemmCublas, MatchesHostForEveryTransposeCombination) {
  std::string why;
  if (!have_cuda_device(why)) GTEST_SKIP() << why;
  for (Trans ta : {Trans::No, Trans::Yes})
    for (Trans tb : {Trans::No, Trans::Yes}) {
      check_against_host<float>(ta, tb);
      check_against_host<double>(ta, tb);
    }
}

}  // namespace
}  // namespace strata
