#pragma once
// Row-wise causal softmax over attention scores and its backward, for a tile of consecutive queries. Both row
// shapes (kernels/common.hpp): a thread per row (host, vectorised) or a team per row with team reductions (GPU).
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

// The rows of one or more score tiles [count, block_rows, cols]: row r is query position
// first_query + r % block_rows and holds the scores of keys 0 .. cols-1; keys after the query are masked.
// cols >= first_query + block_rows (every row sees all the keys it may attend to).
struct CausalRows {
  int64_t rows;     // count * block_rows
  int block_rows;   // queries per tile
  int first_query;  // position of each tile's first query
  int cols;         // keys per row (the row stride)
};

// Whole T x T matrices: rows = count * T, each a full causal matrix.
inline CausalRows full_causal_rows(int64_t rows, int seq) { return {rows, seq, 0, seq}; }

// P = causal softmax of S, in place over att[rows, cols] (entries after the query set to 0).
template <class T, RowShape shape = kRowShape>
void causal_softmax_forward(const Vec<T>& att, const CausalRows& c) {
  const int64_t n = c.cols, m = c.block_rows, q0 = c.first_query;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::attention::softmax_forward_teams", Kokkos::TeamPolicy<ExecSpace>(c.rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t r = team.league_rank(), i = q0 + r % m, base = r * n;
          T mx;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, i + 1),
              [&](const int64_t j, T& v) { v = att(base + j) > v ? att(base + j) : v; }, Kokkos::Max<T>(mx));
          T sum = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, i + 1),
              [&](const int64_t j, T& acc) { acc += fastmath::exp(att(base + j) - mx); }, sum);
          const T inv = T(1) / sum;
          // Every thread has read its scores inside the reductions above: the writes below cannot race them.
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n), [&](const int64_t j) {
            att(base + j) = j <= i ? fastmath::exp(att(base + j) - mx) * inv : T(0);
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::attention::softmax_forward", range(c.rows), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t i = q0 + r % m, base = r * n;
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
        for (int64_t j = i + 1; j < n; ++j) att(base + j) = 0;
      });
}

// dS = P * (dP - sum_j dP*P) * scale, in place over datt[rows, cols]; 0 after the query.
template <class T, RowShape shape = kRowShape>
void causal_softmax_backward(const Vec<T>& datt, const Vec<T>& att, const CausalRows& c, T scale) {
  const int64_t n = c.cols, m = c.block_rows, q0 = c.first_query;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::attention::softmax_backward_teams", Kokkos::TeamPolicy<ExecSpace>(c.rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t r = team.league_rank(), i = q0 + r % m, base = r * n;
          T dot = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, i + 1),
              [&](const int64_t j, T& acc) { acc += datt(base + j) * att(base + j); }, dot);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n), [&](const int64_t j) {
            datt(base + j) = j <= i ? att(base + j) * (datt(base + j) - dot) * scale : T(0);
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::attention::softmax_backward", range(c.rows), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t i = q0 + r % m, base = r * n;
        T dot = 0;
        STRATA_SIMD_REDUCE(+, dot)
        for (int64_t j = 0; j <= i; ++j) dot += datt(base + j) * att(base + j);
        for (int64_t j = 0; j <= i; ++j) datt(base + j) = att(base + j) * (datt(base + j) - dot) * scale;
        for (int64_t j = i + 1; j < n; ++j) datt(base + j) = 0;
      });
}

}  // namespace strata
