#include "kernels/gemm.hpp"

#include <cblas.h>

#include <atomic>
#include <type_traits>

#include "core/error.hpp"
#include "kernels/bf16.hpp"
#include "kernels/common.hpp"

namespace strata {
namespace {

CBLAS_TRANSPOSE cblas_trans(Trans t) { return t == Trans::Yes ? CblasTrans : CblasNoTrans; }

template <class T>
void check_shape(const GemmShape& s) {
  const int a_cols = s.a_cols(), b_cols = s.b_cols();
  STRATA_CHECK(s.m >= 0 && s.n >= 0 && s.k >= 0, "gemm: negative size m={} n={} k={}", s.m, s.n, s.k);
  STRATA_CHECK(s.lda >= a_cols && s.ldb >= b_cols && s.ldc >= s.n,
               "gemm: leading dimensions too small (lda {} < {}, ldb {} < {} or ldc {} < {})", s.lda, a_cols, s.ldb,
               b_cols, s.ldc, s.n);
}

std::atomic<GemmPrecision> g_precision{GemmPrecision::FP32};

// Elements spanned by `count` row-major matrices of `rows` x `cols`, row stride ld, matrix stride `stride`.
size_t span(int rows, int cols, int ld, int64_t stride, int count) {
  if (rows == 0 || cols == 0 || count == 0) return 0;
  return size_t(count - 1) * size_t(stride) + size_t(rows - 1) * size_t(ld) + size_t(cols);
}

// Scratch for the bf16 copies of the operands, grown on demand and kept (one GEMM at a time: GEMMs are issued from
// the training thread only). Released at Kokkos::finalize, before the memory spaces go.
Kokkos::View<bf16_bits*, MemSpace>& bf16_scratch(int which) {
  static Kokkos::View<bf16_bits*, MemSpace> scratch[2];
  static bool hooked = false;
  if (!hooked) {
    hooked = true;
    Kokkos::push_finalize_hook([] {
      for (auto& v : scratch) v = {};
    });
  }
  return scratch[which];
}

// src[0, n) rounded to bf16 into scratch `which` (the layout kept: same leading dimensions and strides).
const bf16_bits* to_bf16(const float* src, size_t n, int which) {
  auto& dst = bf16_scratch(which);
  if (dst.extent(0) < n)
    dst = Kokkos::View<bf16_bits*, MemSpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::gemm::bf16_operand"), n);
  auto out = dst;
  Kokkos::parallel_for(
      "strata::gemm::to_bf16", range(n), KOKKOS_LAMBDA(const int64_t i) { out(i) = float_to_bf16(src[i]); });
  return dst.data();
}

// C = op(A) op(B) with both operands rounded to bf16 and fp32 accumulation, on host or device memory.
void gemm_bf16(const GemmShape& s, float alpha, const float* a, int64_t stride_a, const float* b, int64_t stride_b,
               float beta, float* c, int64_t stride_c, int count) {
  check_shape<float>(s);
  if (s.m == 0 || s.n == 0 || count == 0) return;
  const bf16_bits* a16 = to_bf16(a, span(s.a_rows(), s.a_cols(), s.lda, stride_a, count), 0);
  const bf16_bits* b16 = to_bf16(b, span(s.b_rows(), s.b_cols(), s.ldb, stride_b, count), 1);
  if constexpr (kDeviceMemory) {
#ifdef STRATA_HAVE_CUDA
    gemm_cublas_bf16(s, alpha, a16, stride_a, b16, stride_b, beta, c, stride_c, count);
#else
    STRATA_FAIL("gemm: device memory space but Strata was built without STRATA_ENABLE_CUDA");
#endif
  } else {
    // Host code (oneDNN, CBLAS) reads what a Kokkos kernel wrote: Kokkos requires a fence first, even on the host.
    Kokkos::fence();
    gemm_host_bf16(s, alpha, a16, stride_a, b16, stride_b, beta, c, stride_c, count);
  }
}

}  // namespace

void set_gemm_precision(GemmPrecision p) { g_precision.store(p); }
GemmPrecision gemm_precision() { return g_precision.load(); }

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
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_precision() == GemmPrecision::BF16) return gemm_bf16(s, alpha, a, 0, b, 0, beta, c, 0, 1);
  }
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
  if constexpr (std::is_same_v<T, float>) {
    if (gemm_precision() == GemmPrecision::BF16)
      return gemm_bf16(s, alpha, a, stride_a, b, stride_b, beta, c, stride_c, count);
  }
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
