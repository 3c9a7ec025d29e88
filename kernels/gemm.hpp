#pragma once
// The one GEMM dispatch (DESIGN.md principle 2): CBLAS for host memory, cuBLAS for CUDA memory.
// Row-major throughout: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N].
#include <cstdint>
#include <string>

namespace strata {

enum class Trans { No, Yes };

// Precision of float GEMMs, process-wide (train.precision): FP32, or BF16 = both operands rounded to bfloat16
// (round to nearest even) and the products accumulated in fp32 into an fp32 C, as cuBLAS' bf16 GEMMs and
// PyTorch's bf16 matmuls do. Double GEMMs are always double (the float64 references).
enum class GemmPrecision { FP32, BF16 };
void set_gemm_precision(GemmPrecision p);
GemmPrecision gemm_precision();
// train.precision's value ("fp32" or "bf16", as the config validates) as a GEMM precision.
inline GemmPrecision gemm_precision_named(const std::string& name) {
  return name == "bf16" ? GemmPrecision::BF16 : GemmPrecision::FP32;
}

// Sets a precision for a scope and restores the previous one.
class ScopedGemmPrecision {
 public:
  explicit ScopedGemmPrecision(GemmPrecision p) : previous_(gemm_precision()) { set_gemm_precision(p); }
  ~ScopedGemmPrecision() { set_gemm_precision(previous_); }
  ScopedGemmPrecision(const ScopedGemmPrecision&) = delete;
  ScopedGemmPrecision& operator=(const ScopedGemmPrecision&) = delete;

 private:
  GemmPrecision previous_;
};

struct GemmShape {
  Trans trans_a = Trans::No, trans_b = Trans::No;
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;  // leading dimensions (row strides) as stored
  // A and B as stored (row-major, before op()): op(A) is m x k, op(B) is k x n.
  int a_rows() const { return trans_a == Trans::No ? m : k; }
  int a_cols() const { return trans_a == Trans::No ? k : m; }
  int b_rows() const { return trans_b == Trans::No ? k : n; }
  int b_cols() const { return trans_b == Trans::No ? n : k; }
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

// Host bf16 GEMMs on operands already rounded to bf16 (bits), fp32 C. OneDnn: oneDNN's matmul (AVX512-BF16
// instructions where the CPU has them); WidenedSgemm: the bf16 values widened to float and CBLAS sgemm (exact
// products, so the same result up to the order of the fp32 sums). Auto: oneDNN where it has an optimised kernel
// for this CPU, else WidenedSgemm. a/b hold `count` matrices stride_a/stride_b apart, as gemm_strided_batched.
enum class Bf16Backend { Auto, OneDnn, WidenedSgemm };
void gemm_host_bf16(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b,
                    int64_t stride_b, float beta, float* c, int64_t stride_c, int count,
                    Bf16Backend backend = Bf16Backend::Auto);
// Whether this build and CPU run bf16 GEMMs on oneDNN's optimised kernels (what Auto picks).
bool onednn_bf16_available();

#ifdef STRATA_HAVE_CUDA
// cuBLAS bf16 GEMM (cublasGemmStridedBatchedEx: bf16 A/B, fp32 C, fp32 compute) on device pointers.
void gemm_cublas_bf16(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b,
                      int64_t stride_b, float beta, float* c, int64_t stride_c, int count);
// cuBLAS path on device pointers (row-major emulated by computing C^T = op(B)^T op(A)^T).
template <class T>
void gemm_cublas(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c);
template <class T>
void gemm_cublas_strided_batched(const GemmShape& s, T alpha, const T* a, int64_t stride_a, const T* b,
                                 int64_t stride_b, T beta, T* c, int64_t stride_c, int count);
#endif

}  // namespace strata
