#pragma once
// GroupNorm, as torch.nn.GroupNorm(G, C, eps=1e-5, affine=True): the C channels split into G groups of C/G;
// each (sample, group) is normalised over its C/G channels and S = H*W positions (biased variance), then each
// channel gets its own gamma and beta. G = 1 is LayerNorm over (C, H, W) with a per-channel affine; G = C is
// InstanceNorm. The elements of one (sample, group) are contiguous in NCHW: a "row" of C/G * S values.
// Both row shapes (kernels/common.hpp): a thread per row or per channel (host, vectorised), or a team per row or
// per channel with team reductions (GPUs).
#include <cstdint>

#include "core/error.hpp"
#include "kernels/common.hpp"

namespace strata {

constexpr double kGroupNormEps = 1e-5;

// y[B, C, S] = (x - mean) * rstd * gamma[c] + beta[c]; saves mean[B*G], rstd[B*G] (index b*G + g) for backward.
// Requires C % G == 0.
template <class T, RowShape shape = kRowShape>
void group_norm_forward(const Vec<T>& y, const Vec<T>& mean, const Vec<T>& rstd, const Vec<T>& x, const Vec<T>& gamma,
                        const Vec<T>& beta, int batch, int channels, int64_t spatial, int groups) {
  STRATA_CHECK(groups > 0 && channels % groups == 0, "group_norm: {} channels in {} groups", channels, groups);
  const int64_t C = channels, S = spatial, L = int64_t(channels / groups) * spatial;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::group_norm::forward_stats_teams", Kokkos::TeamPolicy<ExecSpace>(batch * groups, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t row = team.league_rank(), base = row * L;
          T m = 0, var = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, L), [&](const int64_t k, T& acc) { acc += x(base + k); }, m);
          m /= T(L);
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, L),
              [&](const int64_t k, T& acc) { acc += (x(base + k) - m) * (x(base + k) - m); }, var);
          var /= T(L);
          Kokkos::single(Kokkos::PerTeam(team), [&] {
            mean(row) = m;
            rstd(row) = T(1) / kmath::sqrt(var + T(kGroupNormEps));
          });
        });
    // Normalise + affine: one thread per element, coalesced.
    Kokkos::parallel_for(
        "strata::group_norm::forward_apply_elements", range(size_t(int64_t(batch) * C * S)),
        KOKKOS_LAMBDA(const int64_t i) {
          const int64_t bc = i / S, c = bc % C, row = i / L;
          y(i) = (x(i) - mean(row)) * rstd(row) * gamma(c) + beta(c);
        });
    return;
  }
  // Statistics: one thread per (sample, group), two passes over its row (mean first, then the centred
  // variance: no cancellation).
  Kokkos::parallel_for(
      "strata::group_norm::forward_stats", range(size_t(batch) * groups), KOKKOS_LAMBDA(const int64_t row) {
        const int64_t base = row * L;
        T m = 0;
        STRATA_SIMD_REDUCE(+, m)
        for (int64_t k = 0; k < L; ++k) m += x(base + k);
        m /= T(L);
        T var = 0;
        STRATA_SIMD_REDUCE(+, var)
        for (int64_t k = 0; k < L; ++k) {
          const T d = x(base + k) - m;
          var += d * d;
        }
        var /= T(L);
        mean(row) = m;
        rstd(row) = T(1) / kmath::sqrt(var + T(kGroupNormEps));
      });
  // Normalise + affine: one thread per channel plane (b, c), contiguous.
  Kokkos::parallel_for(
      "strata::group_norm::forward_apply", range(size_t(int64_t(batch) * C)), KOKKOS_LAMBDA(const int64_t bc) {
        const int64_t c = bc % C, row = bc * S / L, base = bc * S;
        const T m = mean(row), scale = rstd(row) * gamma(c), shift = beta(c);
        for (int64_t s = 0; s < S; ++s) y(base + s) = (x(base + s) - m) * scale + shift;
      });
}

// dx[B, C, S] = ... (overwrites), dgamma[C] += ..., dbeta[C] += ...; from dy[B, C, S], x, gamma and the saved
// mean/rstd[B*G].
template <class T, RowShape shape = kRowShape>
void group_norm_backward(const Vec<T>& dx, const Vec<T>& dgamma, const Vec<T>& dbeta, const Vec<T>& dy, const Vec<T>& x,
                         const Vec<T>& gamma, const Vec<T>& mean, const Vec<T>& rstd, int batch, int channels,
                         int64_t spatial, int groups) {
  STRATA_CHECK(groups > 0 && channels % groups == 0, "group_norm: {} channels in {} groups", channels, groups);
  const int64_t C = channels, S = spatial, G = groups, CG = channels / groups, L = CG * spatial, B = batch;
  if constexpr (shape == RowShape::Team) {
    // Input gradient: a team per (sample, group) row; parameter gradients: a team per channel over (b, s).
    Kokkos::parallel_for(
        "strata::group_norm::backward_input_teams", Kokkos::TeamPolicy<ExecSpace>(B * G, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t row = team.league_rank(), base = row * L, c0 = (row % G) * CG;
          const T m = mean(row), r = rstd(row);
          T sum_g = 0, sum_gx = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, L),
              [&](const int64_t k, T& acc) { acc += dy(base + k) * gamma(c0 + k / S); }, sum_g);
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, L),
              [&](const int64_t k, T& acc) { acc += dy(base + k) * gamma(c0 + k / S) * (x(base + k) - m) * r; },
              sum_gx);
          sum_g /= T(L);
          sum_gx /= T(L);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, L), [&](const int64_t k) {
            const T xhat = (x(base + k) - m) * r;
            dx(base + k) = r * (dy(base + k) * gamma(c0 + k / S) - sum_g - xhat * sum_gx);
          });
        });
    Kokkos::parallel_for(
        "strata::group_norm::backward_params_teams", Kokkos::TeamPolicy<ExecSpace>(C, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t c = team.league_rank(), g = c / CG;
          T acc_gamma = 0, acc_beta = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, B * S),
              [&](const int64_t i, T& acc) {
                const int64_t b = i / S, at = (b * C + c) * S + i % S;
                acc += dy(at) * (x(at) - mean(b * G + g)) * rstd(b * G + g);
              },
              acc_gamma);
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, B * S),
              [&](const int64_t i, T& acc) { acc += dy((i / S * C + c) * S + i % S); }, acc_beta);
          Kokkos::single(Kokkos::PerTeam(team), [&] {
            dgamma(c) += acc_gamma;
            dbeta(c) += acc_beta;
          });
        });
    return;
  }
  // Input gradient, one thread per (sample, group): with g = dy * gamma and xhat = (x - mean) * rstd,
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), means over the group's row (as LayerNorm).
  Kokkos::parallel_for(
      "strata::group_norm::backward_input", range(size_t(B * G)), KOKKOS_LAMBDA(const int64_t row) {
        const int64_t base = row * L, c0 = (row % G) * CG;
        const T m = mean(row), r = rstd(row);
        T sum_g = 0, sum_gx = 0;
        for (int64_t cc = 0; cc < CG; ++cc) {
          const T w = gamma(c0 + cc);
          const int64_t off = base + cc * S;
          STRATA_SIMD_REDUCE(+, sum_g, sum_gx)
          for (int64_t s = 0; s < S; ++s) {
            const T g = dy(off + s) * w;
            sum_g += g;
            sum_gx += g * (x(off + s) - m) * r;
          }
        }
        sum_g /= T(L);
        sum_gx /= T(L);
        for (int64_t cc = 0; cc < CG; ++cc) {
          const T w = gamma(c0 + cc);
          const int64_t off = base + cc * S;
          for (int64_t s = 0; s < S; ++s) {
            const T xhat = (x(off + s) - m) * r;
            dx(off + s) = r * (dy(off + s) * w - sum_g - xhat * sum_gx);
          }
        }
      });
  // Parameter gradients reduce over samples and positions. Each thread owns one channel and walks b, then s,
  // in order: no two threads add into one element, deterministic.
  Kokkos::parallel_for(
      "strata::group_norm::backward_params", range(size_t(C)), KOKKOS_LAMBDA(const int64_t c) {
        const int64_t g = c / CG;
        T acc_gamma = 0, acc_beta = 0;
        for (int64_t b = 0; b < B; ++b) {
          const T m = mean(b * G + g), r = rstd(b * G + g);
          const int64_t off = (b * C + c) * S;
          STRATA_SIMD_REDUCE(+, acc_gamma, acc_beta)
          for (int64_t s = 0; s < S; ++s) {
            const T d = dy(off + s);
            acc_gamma += d * (x(off + s) - m) * r;
            acc_beta += d;
          }
        }
        dgamma(c) += acc_gamma;
        dbeta(c) += acc_beta;
      });
}

}  // namespace strata
