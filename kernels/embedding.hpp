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

// dwpe[Tmax, C] += dout summed over the batch.
template <class T>
void embedding_backward_positions(const Vec<T>& dwpe, const Vec<T>& dout, int batch, int seq, int channels) {
  const int64_t C = channels;
  Kokkos::parallel_for(
      "strata::embedding::backward_positions", range(size_t(seq) * C), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t t = i / C, c = i % C;
        T sum = 0;
        for (int64_t b = 0; b < batch; ++b) sum += dout((b * seq + t) * C + c);
        dwpe(t * C + c) += sum;
      });
}

// dwte[V, C] += scatter of dout rows by token; dwpe[Tmax, C] += sum over batch. dout[B*T, C].
// Parallel over channels so that no two threads add into the same element: race-free and deterministic.
template <class T>
void embedding_backward(const Vec<T>& dwte, const Vec<T>& dwpe, const Vec<const int32_t>& tokens, const Vec<T>& dout,
                        int batch, int seq, int channels) {
  const int64_t C = channels, N = int64_t(batch) * seq;
  Kokkos::parallel_for(
      "strata::embedding::backward_tokens", range(C), KOKKOS_LAMBDA(const int64_t c) {
        for (int64_t n = 0; n < N; ++n) dwte(int64_t(tokens(n)) * C + c) += dout(n * C + c);
      });
  embedding_backward_positions(dwpe, dout, batch, seq, channels);
}

// Vocab-parallel lookup: this rank holds wte rows [vocab_begin, vocab_begin + vocab_count) as wte[Vl, C].
// out[B*T, C] = (token in range ? wte[token - vocab_begin] : 0) + (add_positions ? wpe[t] : 0); the ranks'
// outputs are then summed (one rank adds the positions).
template <class T>
void embedding_forward_sharded(const Vec<T>& out, const Vec<const int32_t>& tokens, const Vec<T>& wte,
                               const Vec<T>& wpe, int batch, int seq, int channels, int64_t vocab_begin,
                               int64_t vocab_count, bool add_positions) {
  const int64_t C = channels;
  Kokkos::parallel_for(
      "strata::embedding::forward_sharded", range(size_t(batch) * seq), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t tok = int64_t(tokens(n)) - vocab_begin, t = n % seq;
        const bool mine = tok >= 0 && tok < vocab_count;
        for (int64_t c = 0; c < C; ++c)
          out(n * C + c) = (mine ? wte(tok * C + c) : T(0)) + (add_positions ? wpe(t * C + c) : T(0));
      });
}

// dwte[Vl, C] += dout rows of the tokens in this rank's range (race-free: one thread per channel).
template <class T>
void embedding_backward_tokens_sharded(const Vec<T>& dwte, const Vec<const int32_t>& tokens, const Vec<T>& dout,
                                       int batch, int seq, int channels, int64_t vocab_begin, int64_t vocab_count) {
  const int64_t C = channels, N = int64_t(batch) * seq;
  Kokkos::parallel_for(
      "strata::embedding::backward_tokens_sharded", range(C), KOKKOS_LAMBDA(const int64_t c) {
        for (int64_t n = 0; n < N; ++n) {
          const int64_t tok = int64_t(tokens(n)) - vocab_begin;
          if (tok >= 0 && tok < vocab_count) dwte(tok * C + c) += dout(n * C + c);
        }
      });
}

}  // namespace strata
