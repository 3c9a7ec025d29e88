// cuBLAS GEMMs on device pointers. cuBLAS is column-major: a row-major C = op(A) op(B) is the
// column-major C^T = op(B)^T op(A)^T, so the operands swap and m/n swap; transposes keep their flags.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <type_traits>

#include <Kokkos_Core.hpp>

#include "core/error.hpp"
#include "kernels/gemm.hpp"

namespace strata {
namespace {

#define STRATA_CUBLAS(call)                                                                                       \
  do {                                                                                                            \
    cublasStatus_t st_ = (call);                                                                                  \
    STRATA_CHECK(st_ == CUBLAS_STATUS_SUCCESS, "cuBLAS call {} failed: {} ({})", #call, cublasGetStatusName(st_), \
                 cublasGetStatusString(st_));                                                                     \
  } while (0)

cublasHandle_t handle() {
  static cublasHandle_t h = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    STRATA_CUBLAS(cublasCreate(&h));
#ifdef KOKKOS_ENABLE_CUDA
    // On Kokkos' stream: a GEMM runs after the kernels that produced its operands and before those that read C,
    // with no fence between them; host code still fences (deep_copy) before it reads a result.
    STRATA_CUBLAS(cublasSetStream(h, Kokkos::Cuda().cuda_stream()));
#endif
  });
  return h;
}

cublasOperation_t op(Trans t) { return t == Trans::Yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

template <class T>
void gemm_cublas(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  if (s.m == 0 || s.n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    STRATA_CUBLAS(cublasSgemm(handle(), op(s.trans_b), op(s.trans_a), s.n, s.m, s.k, &alpha, b, s.ldb, a, s.lda, &beta,
                              c, s.ldc));
  } else {
    STRATA_CUBLAS(cublasDgemm(handle(), op(s.trans_b), op(s.trans_a), s.n, s.m, s.k, &alpha, b, s.ldb, a, s.lda, &beta,
                              c, s.ldc));
  }
}

template <class T>
void gemm_cublas_strided_batched(const GemmShape& s, T alpha, const T* a, int64_t stride_a, const T* b,
                                 int64_t stride_b, T beta, T* c, int64_t stride_c, int count) {
  if (s.m == 0 || s.n == 0 || count == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    STRATA_CUBLAS(cublasSgemmStridedBatched(handle(), op(s.trans_b), op(s.trans_a), s.n, s.m, s.k, &alpha, b, s.ldb,
                                            stride_b, a, s.lda, stride_a, &beta, c, s.ldc, stride_c, count));
  } else {
    STRATA_CUBLAS(cublasDgemmStridedBatched(handle(), op(s.trans_b), op(s.trans_a), s.n, s.m, s.k, &alpha, b, s.ldb,
                                            stride_b, a, s.lda, stride_a, &beta, c, s.ldc, stride_c, count));
  }
}

void gemm_cublas_bf16(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b,
                      int64_t stride_b, float beta, float* c, int64_t stride_c, int count) {
  if (s.m == 0 || s.n == 0 || count == 0) return;
  // bf16 operands, fp32 C and fp32 accumulation (CUBLAS_COMPUTE_32F: no reduced-precision reductions).
  STRATA_CUBLAS(cublasGemmStridedBatchedEx(
      handle(), op(s.trans_b), op(s.trans_a), s.n, s.m, s.k, &alpha, b, CUDA_R_16BF, s.ldb, stride_b, a, CUDA_R_16BF,
      s.lda, stride_a, &beta, c, CUDA_R_32F, s.ldc, stride_c, count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template void gemm_cublas<float>(const GemmShape&, float, const float*, const float*, float, float*);
template void gemm_cublas<double>(const GemmShape&, double, const double*, const double*, double, double*);
template void gemm_cublas_strided_batched<float>(const GemmShape&, float, const float*, int64_t, const float*, int64_t,
                                                 float, float*, int64_t, int);
template void gemm_cublas_strided_batched<double>(const GemmShape&, double, const double*, int64_t, const double*,
                                                  int64_t, double, double*, int64_t, int);

}  // namespace strata
