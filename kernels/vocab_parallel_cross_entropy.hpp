#pragma once
// Cross-entropy over a vocabulary split across tensor-parallel ranks (Megatron): no rank holds the full
// logits. Each rank reduces its slice; the caller combines the ranks between the steps:
//   row_max (then all-reduce max) -> row_sum_exp (then all-reduce sum) -> target_logit (then all-reduce sum)
//   -> finish. The backward needs only the saved log-sum-exp. The row kernels take a RowShape (kernels/common.hpp):
// a thread per row on the host, a team per row with team reductions on GPUs.
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

// mx[N] = max over this rank's logits[N, Vl]
template <class T, RowShape shape = kRowShape>
void vp_row_max(const Vec<T>& mx, const Vec<T>& logits, int rows, int vocab_local) {
  const int64_t V = vocab_local;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::vocab_parallel_cross_entropy::row_max_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank();
          T m;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, V),
              [&](const int64_t v, T& acc) { acc = logits(n * V + v) > acc ? logits(n * V + v) : acc; },
              Kokkos::Max<T>(m));
          Kokkos::single(Kokkos::PerTeam(team), [&] { mx(n) = m; });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::vocab_parallel_cross_entropy::row_max", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        T m = logits(n * V);
        STRATA_SIMD_REDUCE(max, m)
        for (int64_t v = 1; v < V; ++v) m = logits(n * V + v) > m ? logits(n * V + v) : m;
        mx(n) = m;
      });
}

// sum[N] = sum over this rank's logits of exp(logit - mx) (mx: the global row max)
template <class T, RowShape shape = kRowShape>
void vp_row_sum_exp(const Vec<T>& sum, const Vec<T>& logits, const Vec<T>& mx, int rows, int vocab_local) {
  const int64_t V = vocab_local;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::vocab_parallel_cross_entropy::row_sum_exp_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank();
          const T m = mx(n);
          T s = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, V),
              [&](const int64_t v, T& acc) { acc += fastmath::exp(logits(n * V + v) - m); }, s);
          Kokkos::single(Kokkos::PerTeam(team), [&] { sum(n) = s; });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::vocab_parallel_cross_entropy::row_sum_exp", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const T m = mx(n);
        T s = 0;
        STRATA_SIMD_REDUCE(+, s)
        for (int64_t v = 0; v < V; ++v) s += fastmath::exp(logits(n * V + v) - m);
        sum(n) = s;
      });
}

// picked[N] = logits[n, target - vocab_begin] when the target is in this rank's range, else 0
template <class T>
void vp_target_logit(const Vec<T>& picked, const Vec<T>& logits, const Vec<const int32_t>& targets, int rows,
                     int vocab_local, int64_t vocab_begin) {
  const int64_t V = vocab_local;
  Kokkos::parallel_for(
      "strata::vocab_parallel_cross_entropy::target_logit", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t t = int64_t(targets(n)) - vocab_begin;
        picked(n) = t >= 0 && t < V ? logits(n * V + t) : T(0);
      });
}

// lse[N] = mx + log(sum); losses[N] = lse - picked   (sum and picked already summed over the ranks)
template <class T>
void vp_finish(const Vec<T>& losses, const Vec<T>& lse, const Vec<T>& mx, const Vec<T>& sum, const Vec<T>& picked,
               int rows) {
  Kokkos::parallel_for(
      "strata::vocab_parallel_cross_entropy::finish", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        lse(n) = mx(n) + kmath::log(sum(n));
        losses(n) = lse(n) - picked(n);
      });
}

// In place: logits[N, Vl] becomes (softmax - onehot) * dloss for this rank's slice.
template <class T, RowShape shape = kRowShape>
void vp_backward(const Vec<T>& logits, const Vec<T>& lse, const Vec<const int32_t>& targets, int rows, int vocab_local,
                 int64_t vocab_begin, T dloss) {
  const int64_t V = vocab_local;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::vocab_parallel_cross_entropy::backward_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank(), t = int64_t(targets(n)) - vocab_begin;
          const T l = lse(n);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, V), [&](const int64_t v) {
            const T g = fastmath::exp(logits(n * V + v) - l) * dloss;
            logits(n * V + v) = v == t ? g - dloss : g;
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::vocab_parallel_cross_entropy::backward", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const T l = lse(n);
        for (int64_t v = 0; v < V; ++v) logits(n * V + v) = fastmath::exp(logits(n * V + v) - l) * dloss;
        const int64_t t = int64_t(targets(n)) - vocab_begin;
        if (t >= 0 && t < V) logits(n * V + t) -= dloss;
      });
}

}  // namespace strata
