#include "kernels/gemm.hpp"

#include <cblas.h>

#include <type_traits>

#include "core/error.hpp"
#include "kernels/common.hpp"

namespace strata {
namespace {

constexpr bool kDeviceMemory = !std::is_same_v<MemSpace, Kokkos::HostSpace>;

CBLAS_TRANSPOSE cblas_trans(Trans t) { return t == Trans::Yes ? CblasTrans : CblasNoTrans; }

template <class T>
void check_shape(const GemmShape& s) {
  int a_cols = s.trans_a == Trans::No ? s.k : s.m;
  int b_cols = s.trans_b == Trans::No ? s.n : s.k;
  STRATA_CHECK(s.m >= 0 && s.n >= 0 && s.k >= 0, "gemm: negative size m={} n={} k={}", s.m, s.n, s.k);
  STRATA_CHECK(s.lda >= a_cols && s.ldb >= b_cols && s.ldc >= s.n,
               "gemm: leading dimensions too small (lda {} < {}, ldb {} < {} or ldc {} < {})", s.lda, a_cols, s.ldb,
               b_cols, s.ldc, s.n);
}

}  // namespace

template <class T>
void gemm_host(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  check_shape<T>(s);
  if (s.m == 0 || s.n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, cblas_trans(s.trans_a), cblas_trans(s.trans_b), s.m, s.n, s.k, alpha, a, s.lda, b, s.ldb,
                beta, c, s.ldc);
  } else {
    static_assert(std::is_same_v<T, double>, "gemm: float or double");
    cblas_dgemm(CblasRowMajor, cblas_trans(s.trans_a), cblas_trans(s.trans_b), s.m, s.n, s.k, alpha, a, s.lda, b, s.ldb,
                beta, c, s.ldc);
  }
}

template <class T>
void gemm(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  if constexpr (kDeviceMemory) {
#ifdef STRATA_HAVE_CUDA
    gemm_cublas(s, alpha, a, b, beta, c);
#else
    STRATA_FAIL("gemm: device memory space but Strata was built without STRATA_ENABLE_CUDA");
#endif
  } else {
    gemm_host(s, alpha, a, b, beta, c);
  }
}

template <class T>
void gemm_strided_batched(const GemmShape& s, T alpha, const T* a, int64_t stride_a, const T* b, int64_t stride_b,
                          T beta, T* c, int64_t stride_c, int count) {
  if constexpr (kDeviceMemory) {
#ifdef STRATA_HAVE_CUDA
    gemm_cublas_strided_batched(s, alpha, a, stride_a, b, stride_b, beta, c, stride_c, count);
#else
    STRATA_FAIL("gemm: device memory space but Strata was built without STRATA_ENABLE_CUDA");
#endif
  } else {
    for (int i = 0; i < count; ++i) gemm_host(s, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
  }
}

#define STRATA_GEMM_INSTANTIATE(T)                                            \
  template void gemm_host<T>(const GemmShape&, T, const T*, const T*, T, T*); \
  template void gemm<T>(const GemmShape&, T, const T*, const T*, T, T*);      \
  template void gemm_strided_batched<T>(const GemmShape&, T, const T*, int64_t, const T*, int64_t, T, T*, int64_t, int);
STRATA_GEMM_INSTANTIATE(float)
STRATA_GEMM_INSTANTIATE(double)
#undef STRATA_GEMM_INSTANTIATE

}  // namespace strata
