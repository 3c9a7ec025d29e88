#pragma once
// Multi-head causal self-attention on a fused qkv tensor. Scores and the weighted sum are GEMMs through
// the dispatch (heads batched with strides straight into qkv: no permute copies); the causal softmax
// and its backward are Kokkos kernels.
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/gemm.hpp"

namespace strata {

struct AttentionShape {
  int batch, seq, channels, heads;
  int head_dim() const { return channels / heads; }
};

// P[rows, T] = causal softmax of S row-wise, in place (row r is query position r % T; j > i set to 0).
template <class T>
void causal_softmax_forward(const Vec<T>& att, int64_t rows, int seq) {
  const int64_t Tn = seq;
  Kokkos::parallel_for(
      "strata::attention::softmax_forward", range(rows), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t i = r % Tn, base = r * Tn;
        T mx = att(base);
        STRATA_SIMD_REDUCE(max, mx)
        for (int64_t j = 1; j <= i; ++j) mx = att(base + j) > mx ? att(base + j) : mx;
        T sum = 0;
        STRATA_SIMD_REDUCE(+, sum)
        for (int64_t j = 0; j <= i; ++j) {
          const T e = fastmath::exp(att(base + j) - mx);
          att(base + j) = e;
          sum += e;
        }
        const T inv = T(1) / sum;
        for (int64_t j = 0; j <= i; ++j) att(base + j) *= inv;
        for (int64_t j = i + 1; j < Tn; ++j) att(base + j) = 0;
      });
}

// dS = P * (dP - sum_j dP*P) * scale, in place over dP[rows, T]; zero above the diagonal.
template <class T>
void causal_softmax_backward(const Vec<T>& datt, const Vec<T>& att, int64_t rows, int seq, T scale) {
  const int64_t Tn = seq;
  Kokkos::parallel_for(
      "strata::attention::softmax_backward", range(rows), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t i = r % Tn, base = r * Tn;
        T dot = 0;
        STRATA_SIMD_REDUCE(+, dot)
        for (int64_t j = 0; j <= i; ++j) dot += datt(base + j) * att(base + j);
        for (int64_t j = 0; j <= i; ++j) datt(base + j) = att(base + j) * (datt(base + j) - dot) * scale;
        for (int64_t j = i + 1; j < Tn; ++j) datt(base + j) = 0;
      });
}

// out[B, T, C] from qkv[B, T, 3C] (q | k | v, head h in columns h*D .. h*D+D-1 of each);
// saves att[B, H, T, T] (the softmax probabilities) for backward.
template <class T>
void attention_forward(const Vec<T>& out, const Vec<T>& att, const Vec<T>& qkv, const AttentionShape& s) {
  const int Tn = s.seq, C = s.channels, H = s.heads, D = s.head_dim();
  const T scale = T(1) / std::sqrt(T(D));
  for (int b = 0; b < s.batch; ++b) {
    const T* q = qkv.data() + int64_t(b) * Tn * 3 * C;
    T* a = att.data() + int64_t(b) * H * Tn * Tn;
    // S_h[T, T] = q_h k_h^T * scale
    gemm_strided_batched<T>({Trans::No, Trans::Yes, Tn, Tn, D, 3 * C, 3 * C, Tn}, scale, q, D, q + C, D, T(0), a,
                            int64_t(Tn) * Tn, H);
  }
  causal_softmax_forward(att, int64_t(s.batch) * H * Tn, Tn);
  for (int b = 0; b < s.batch; ++b) {
    const T* v = qkv.data() + int64_t(b) * Tn * 3 * C + 2 * C;
    const T* a = att.data() + int64_t(b) * H * Tn * Tn;
    // out_h[T, D] = P_h[T, T] v_h[T, D]
    gemm_strided_batched<T>({Trans::No, Trans::No, Tn, D, Tn, Tn, 3 * C, C}, T(1), a, int64_t(Tn) * Tn, v, D, T(0),
                            out.data() + int64_t(b) * Tn * C, D, H);
  }
}

// dqkv[B, T, 3C] (overwritten) from dout[B, T, C], qkv and the saved att. scratch[H, T, T].
template <class T>
void attention_backward(const Vec<T>& dqkv, const Vec<T>& scratch, const Vec<T>& dout, const Vec<T>& qkv,
                        const Vec<T>& att, const AttentionShape& s) {
  const int Tn = s.seq, C = s.channels, H = s.heads, D = s.head_dim();
  const T scale = T(1) / std::sqrt(T(D));
  const int64_t TT = int64_t(Tn) * Tn;
  for (int b = 0; b < s.batch; ++b) {
    const T* q = qkv.data() + int64_t(b) * Tn * 3 * C;
    const T* k = q + C;
    const T* v = q + 2 * C;
    T* dq = dqkv.data() + int64_t(b) * Tn * 3 * C;
    T* dk = dq + C;
    T* dv = dq + 2 * C;
    const T* a = att.data() + int64_t(b) * H * TT;
    const T* g = dout.data() + int64_t(b) * Tn * C;
    // dP_h[T, T] = dout_h v_h^T
    gemm_strided_batched<T>({Trans::No, Trans::Yes, Tn, Tn, D, C, 3 * C, Tn}, T(1), g, D, v, D, T(0), scratch.data(),
                            TT, H);
    // dv_h[T, D] = P_h^T dout_h
    gemm_strided_batched<T>({Trans::Yes, Trans::No, Tn, D, Tn, Tn, C, 3 * C}, T(1), a, TT, g, D, T(0), dv, D, H);
    auto att_b = Kokkos::subview(att, std::make_pair(int64_t(b) * H * TT, int64_t(b + 1) * H * TT));
    causal_softmax_backward<T>(scratch, Vec<T>(att_b.data(), H * TT), int64_t(H) * Tn, Tn, scale);
    // dq_h[T, D] = dS_h k_h ; dk_h[T, D] = dS_h^T q_h
    gemm_strided_batched<T>({Trans::No, Trans::No, Tn, D, Tn, Tn, 3 * C, 3 * C}, T(1), scratch.data(), TT, k, D, T(0),
                            dq, D, H);
    gemm_strided_batched<T>({Trans::Yes, Trans::No, Tn, D, Tn, Tn, 3 * C, 3 * C}, T(1), scratch.data(), TT, q, D, T(0),
                            dk, D, H);
  }
}

}  // namespace strata
