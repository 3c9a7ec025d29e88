#pragma once
// Fused softmax cross-entropy over a vocabulary, stable for large logits (max subtracted, log-sum-exp).
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

// losses[N] = logsumexp(logits[n, :]) - (1 - e) logits[n, target[n]] - e mean(logits[n, :]); lse[N] saved for
// backward. logits[N, V], targets[N] (int32, each < V). e = label smoothing (torch's label_smoothing): the target
// distribution puts 1 - e on the target and e spread evenly over all V classes; 0 is the plain cross-entropy.
template <class T, RowShape shape = kRowShape>
void cross_entropy_forward(const Vec<T>& losses, const Vec<T>& lse, const Vec<T>& logits,
                           const Vec<const int32_t>& targets, int rows, int vocab, T smoothing = T(0)) {
  const int64_t V = vocab;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::cross_entropy::forward_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank(), base = n * V;
          T mx;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, V),
              [&](const int64_t v, T& m) { m = logits(base + v) > m ? logits(base + v) : m; }, Kokkos::Max<T>(mx));
          T sum = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, V),
              [&](const int64_t v, T& acc) { acc += fastmath::exp(logits(base + v) - mx); }, sum);
          T total = 0;
          if (smoothing != T(0))
            Kokkos::parallel_reduce(
                Kokkos::TeamThreadRange(team, V), [&](const int64_t v, T& acc) { acc += logits(base + v); }, total);
          Kokkos::single(Kokkos::PerTeam(team), [&] {
            const T l = mx + kmath::log(sum);
            lse(n) = l;
            losses(n) = l - (T(1) - smoothing) * logits(base + targets(n)) - smoothing * total / T(V);
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::cross_entropy::forward", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * V;
        T mx = logits(base);
        STRATA_SIMD_REDUCE(max, mx)
        for (int64_t v = 1; v < V; ++v) mx = logits(base + v) > mx ? logits(base + v) : mx;
        T sum = 0;
        STRATA_SIMD_REDUCE(+, sum)
        for (int64_t v = 0; v < V; ++v) sum += fastmath::exp(logits(base + v) - mx);
        T total = 0;
        if (smoothing != T(0)) {
          STRATA_SIMD_REDUCE(+, total)
          for (int64_t v = 0; v < V; ++v) total += logits(base + v);
        }
        const T l = mx + kmath::log(sum);
        lse(n) = l;
        losses(n) = l - (T(1) - smoothing) * logits(base + targets(n)) - smoothing * total / T(V);
      });
}

// Mean of losses[N] (the reported loss).
template <class T>
T mean_loss(const Vec<T>& losses, int rows) {
  double total = 0;
  Kokkos::parallel_reduce(
      "strata::cross_entropy::mean", range(rows), KOKKOS_LAMBDA(const int64_t n, double& acc) { acc += losses(n); },
      total);
  return T(total / rows);
}

// In place: logits[N, V] becomes dlogits = (softmax - (1 - e) onehot(target) - e / V) * dloss, with dloss = 1/N
// for a mean and e the label smoothing.
template <class T, RowShape shape = kRowShape>
void cross_entropy_backward(const Vec<T>& logits, const Vec<T>& lse, const Vec<const int32_t>& targets, int rows,
                            int vocab, T dloss, T smoothing = T(0)) {
  const int64_t V = vocab;
  // What the smoothed target distribution takes from every class, and from the target on top.
  const T spread = smoothing / T(V) * dloss, on_target = (T(1) - smoothing) * dloss;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::cross_entropy::backward_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank(), base = n * V, target = targets(n);
          const T l = lse(n);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, V), [&](const int64_t v) {
            logits(base + v) = fastmath::exp(logits(base + v) - l) * dloss - spread - (v == target ? on_target : T(0));
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::cross_entropy::backward", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * V;
        const T l = lse(n);
        for (int64_t v = 0; v < V; ++v) logits(base + v) = fastmath::exp(logits(base + v) - l) * dloss - spread;
        logits(base + targets(n)) -= on_target;
      });
}

}  // namespace strata
