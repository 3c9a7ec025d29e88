#pragma once
// Token + learned position embedding.
#include "kernels/common.hpp"

namespace strata {

// out[B*T, C] = wte[tokens[b,t], :] + wpe[t, :]
// tokens[B*T] (int32), wte[V, C], wpe[Tmax >= T, C]
template <class T>
void embedding_forward(const Vec<T>& out, const Vec<const int32_t>& tokens, const Vec<T>& wte, const Vec<T>& wpe,
                       int batch, int seq, int channels) {
  const int64_t C = channels;
  Kokkos::parallel_for(
      "strata::embedding::forward", range(size_t(batch) * seq), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t tok = tokens(n), t = n % seq;
        for (int64_t c = 0; c < C; ++c) out(n * C + c) = wte(tok * C + c) + wpe(t * C + c);
      });
}

// dwte[V, C] += scatter of dout rows by token; dwpe[Tmax, C] += sum over batch. dout[B*T, C].
// Parallel over channels so that no two threads add into the same element: race-free and deterministic.
template <class T>
void embedding_backward(const Vec<T>& dwte, const Vec<T>& dwpe, const Vec<const int32_t>& tokens,
                        const Vec<T>& dout, int batch, int seq, int channels) {
  const int64_t C = channels, N = int64_t(batch) * seq;
  Kokkos::parallel_for(
      "strata::embedding::backward_tokens", range(C), KOKKOS_LAMBDA(const int64_t c) {
        for (int64_t n = 0; n < N; ++n) dwte(int64_t(tokens(n)) * C + c) += dout(n * C + c);
      });
  Kokkos::parallel_for(
      "strata::embedding::backward_positions", range(size_t(seq) * C), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t t = i / C, c = i % C;
        T sum = 0;
        for (int64_t b = 0; b < batch; ++b) sum += dout((b * seq + t) * C + c);
        dwpe(t * C + c) += sum;
      });
}

}  // namespace strata
