#pragma once
// The one GEMM dispatch (DESIGN.md principle 2): CBLAS for host memory, cuBLAS for CUDA memory.
// Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N].
#include <cstdint>

namespace strata {

enum class Trans { No, Yes };

struct GemmShape {
  Trans trans_a = Trans::No, trans_b = Trans::No;
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;  // leading dimensions (row strides) as stored
};

// One GEMM on memory of the default execution space.
template <class T>
void gemm(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c);

// `count` GEMMs of the same shape; matrix i starts at a + i*stride_a (likewise b, c).
template <class T>
void gemm_strided_batched(const GemmShape& s, T alpha, const T* a, int64_t stride_a, const T* b, int64_t stride_b,
                          T beta, T* c, int64_t stride_c, int count);

// Host CBLAS path, callable directly (tests compare it with the device path).
template <class T>
void gemm_host(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c);

#ifdef STRATA_HAVE_CUDA
// cuBLAS path on device pointers (row-major emulated by computing C^T = op(B)^T op(A)^T).
template <class T>
void gemm_cublas(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c);
template <class T>
void gemm_cublas_strided_batched(const GemmShape& s, T alpha, const T* a, int64_t stride_a, const T* b,
                                 int64_t stride_b, T beta, T* c, int64_t stride_c, int count);
#endif

}  // namespace strata
