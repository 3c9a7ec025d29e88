#pragma once
// Token + learned position embedding.
#include <Kokkos_Sort.hpp>

#include <climits>

#include "kernels/common.hpp"
#include "kernels/kernel_scratch.hpp"

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

namespace embedding_detail {

// dwte[rows, C] += dout[n, :] for every n whose row_of(n) is >= 0, each element summed over n in increasing order
// in both shapes (so the shapes agree bit for bit). Host (Thread): each thread owns a block of channels and walks
// n, reading dout rows contiguously. GPU (Team): the (row, n) pairs sorted into one key each (unique, so the sort's
// order is fixed), the runs of one row found by a scan, then a team per row whose threads take the channels.
template <class T, RowShape shape, class RowOf>
void scatter_rows(const Vec<T>& dwte, const Vec<T>& dout, int64_t N, int64_t C, RowOf row_of) {
  if constexpr (shape == RowShape::Team) {
    const int64_t skipped = int64_t(INT_MAX) + 1;  // sorts after every row (rows are int32)
    const Vec<int64_t> keys = kernel_scratch<int64_t>(size_t(N), ScratchSlot::First);
    const Vec<int64_t> starts = kernel_scratch<int64_t>(size_t(N), ScratchSlot::Second);
    Kokkos::parallel_for(
        "strata::embedding::backward_keys", range(size_t(N)), KOKKOS_LAMBDA(const int64_t n) {
          const int64_t row = row_of(n);
          keys(n) = (row >= 0 ? row : skipped) * N + n;
        });
    Kokkos::sort(keys);
    int64_t runs = 0;
    Kokkos::parallel_scan(
        "strata::embedding::backward_runs", range(size_t(N)),
        KOKKOS_LAMBDA(const int64_t i, int64_t& count, const bool final) {
          if (i == 0 || keys(i) / N != keys(i - 1) / N) {
            if (final) starts(count) = i;
            ++count;
          }
        },
        runs);
    Kokkos::parallel_for(
        "strata::embedding::backward_runs_sum", Kokkos::TeamPolicy<ExecSpace>(runs, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t r = team.league_rank(), begin = starts(r), end = r + 1 < runs ? starts(r + 1) : N;
          const int64_t row = keys(begin) / N;
          if (row == skipped) return;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C), [&](const int64_t c) {
            T acc = dwte(row * C + c);
            for (int64_t i = begin; i < end; ++i) acc += dout((keys(i) % N) * C + c);
            dwte(row * C + c) = acc;
          });
        });
    return;
  }
  constexpr int64_t kBlock = 64;
  Kokkos::parallel_for(
      "strata::embedding::backward_rows", range(size_t((C + kBlock - 1) / kBlock)), KOKKOS_LAMBDA(const int64_t blk) {
        const int64_t begin = blk * kBlock, end = begin + kBlock < C ? begin + kBlock : C;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t row = row_of(n);
          if (row < 0) continue;
          for (int64_t c = begin; c < end; ++c) dwte(row * C + c) += dout(n * C + c);
        }
      });
}

}  // namespace embedding_detail

// dwte[V, C] += scatter of dout rows by token; dwpe[Tmax, C] += sum over batch. dout[B*T, C].
// Deterministic: every element sums its rows in order of position (embedding_detail::scatter_rows).
template <class T, RowShape shape = kRowShape>
void embedding_backward(const Vec<T>& dwte, const Vec<T>& dwpe, const Vec<const int32_t>& tokens, const Vec<T>& dout,
                        int batch, int seq, int channels) {
  embedding_detail::scatter_rows<T, shape>(
      dwte, dout, int64_t(batch) * seq, channels, KOKKOS_LAMBDA(const int64_t n)->int64_t { return tokens(n); });
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

// dwte[Vl, C] += dout rows of the tokens in this rank's range (deterministic, as embedding_backward).
template <class T, RowShape shape = kRowShape>
void embedding_backward_tokens_sharded(const Vec<T>& dwte, const Vec<const int32_t>& tokens, const Vec<T>& dout,
                                       int batch, int seq, int channels, int64_t vocab_begin, int64_t vocab_count) {
  embedding_detail::scatter_rows<T, shape>(
      dwte, dout, int64_t(batch) * seq, channels, KOKKOS_LAMBDA(const int64_t n)->int64_t {
        const int64_t tok = int64_t(tokens(n)) - vocab_begin;
        return tok >= 0 && tok < vocab_count ? tok : -1;
      });
}

}  // namespace strata
