#pragma once
// LayerNorm over the last dimension (eps 1e-5, as torch.nn.LayerNorm).
#include "kernels/common.hpp"
#include "kernels/kernel_scratch.hpp"

namespace strata {

constexpr double kLayerNormEps = 1e-5;

// y[N, C] = (x - mean) * rstd * w + b; saves mean[N], rstd[N] for backward. w[C], b[C].
template <class T, RowShape shape = kRowShape>
void layernorm_forward(const Vec<T>& y, const Vec<T>& mean, const Vec<T>& rstd, const Vec<T>& x, const Vec<T>& w,
                       const Vec<T>& b, int rows, int channels) {
  const int64_t C = channels;
  if constexpr (shape == RowShape::Team) {
    Kokkos::parallel_for(
        "strata::layernorm::forward_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
        KOKKOS_LAMBDA(const TeamMember& team) {
          const int64_t n = team.league_rank(), base = n * C;
          T m = 0, var = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, C), [&](const int64_t c, T& acc) { acc += x(base + c); }, m);
          m /= T(C);
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, C),
              [&](const int64_t c, T& acc) {
                const T d = x(base + c) - m;
                acc += d * d;
              },
              var);
          var /= T(C);
          const T r = T(1) / kmath::sqrt(var + T(kLayerNormEps));
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C),
                               [&](const int64_t c) { y(base + c) = (x(base + c) - m) * r * w(c) + b(c); });
          Kokkos::single(Kokkos::PerTeam(team), [&] {
            mean(n) = m;
            rstd(n) = r;
          });
        });
    return;
  }
  Kokkos::parallel_for(
      "strata::layernorm::forward", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * C;
        T m = 0;
        STRATA_SIMD_REDUCE(+, m)
        for (int64_t c = 0; c < C; ++c) m += x(base + c);
        m /= T(C);
        T var = 0;
        STRATA_SIMD_REDUCE(+, var)
        for (int64_t c = 0; c < C; ++c) {
          const T d = x(base + c) - m;
          var += d * d;
        }
        var /= T(C);
        const T r = T(1) / kmath::sqrt(var + T(kLayerNormEps));
        for (int64_t c = 0; c < C; ++c) y(base + c) = (x(base + c) - m) * r * w(c) + b(c);
        mean(n) = m;
        rstd(n) = r;
      });
}

// GPU shape of layernorm_backward: a team per row for dx; dw/db in two deterministic levels (each thread sums one
// channel over a chunk of rows into a [chunks, C] scratch, reading rows coalesced across channels; then each
// channel sums its chunks in order), so the result does not depend on scheduling.
template <class T>
void layernorm_backward_teams(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                              const Vec<T>& w, const Vec<T>& mean, const Vec<T>& rstd, int rows, int channels) {
  const int64_t C = channels, N = rows;
  Kokkos::parallel_for(
      "strata::layernorm::backward_input_teams", Kokkos::TeamPolicy<ExecSpace>(rows, Kokkos::AUTO),
      KOKKOS_LAMBDA(const TeamMember& team) {
        const int64_t n = team.league_rank(), base = n * C;
        const T m = mean(n), r = rstd(n);
        T sum_g = 0, sum_gx = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, C), [&](const int64_t c, T& acc) { acc += dy(base + c) * w(c); }, sum_g);
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, C),
            [&](const int64_t c, T& acc) { acc += dy(base + c) * w(c) * (x(base + c) - m) * r; }, sum_gx);
        sum_g /= T(C);
        sum_gx /= T(C);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C), [&](const int64_t c) {
          const T xhat = (x(base + c) - m) * r;
          dx(base + c) += r * (dy(base + c) * w(c) - sum_g - xhat * sum_gx);
        });
      });
  const int64_t chunks = (N + kRowChunk - 1) / kRowChunk;
  const Vec<T> part_w = kernel_scratch<T>(size_t(chunks * C), ScratchSlot::First);
  const Vec<T> part_b = kernel_scratch<T>(size_t(chunks * C), ScratchSlot::Second);
  Kokkos::parallel_for(
      "strata::layernorm::backward_params_chunks", range(size_t(chunks * C)), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t k = i / C, c = i % C, end = (k + 1) * kRowChunk < N ? (k + 1) * kRowChunk : N;
        T acc_w = 0, acc_b = 0;
        for (int64_t n = k * kRowChunk; n < end; ++n) {
          const T g = dy(n * C + c);
          acc_w += g * (x(n * C + c) - mean(n)) * rstd(n);
          acc_b += g;
        }
        part_w(i) = acc_w;
        part_b(i) = acc_b;
      });
  Kokkos::parallel_for(
      "strata::layernorm::backward_params_sum", range(size_t(C)), KOKKOS_LAMBDA(const int64_t c) {
        T acc_w = 0, acc_b = 0;
        for (int64_t k = 0; k < chunks; ++k) {
          acc_w += part_w(k * C + c);
          acc_b += part_b(k * C + c);
        }
        dw(c) += acc_w;
        db(c) += acc_b;
      });
}

// dx[N, C] += ..., dw[C] += ..., db[C] += ...; from dy[N, C], x, w and the saved mean/rstd.
template <class T, RowShape shape = kRowShape>
void layernorm_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                        const Vec<T>& w, const Vec<T>& mean, const Vec<T>& rstd, int rows, int channels) {
  if constexpr (shape == RowShape::Team)
    return layernorm_backward_teams<T>(dx, dw, db, dy, x, w, mean, rstd, rows, channels);
  const int64_t C = channels, N = rows;
  Kokkos::parallel_for(
      "strata::layernorm::backward_input", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * C;
        const T m = mean(n), r = rstd(n);
        // dxhat = dy * w; dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        T sum_g = 0, sum_gx = 0;
        STRATA_SIMD_REDUCE(+, sum_g, sum_gx)
        for (int64_t c = 0; c < C; ++c) {
          const T g = dy(base + c) * w(c);
          sum_g += g;
          sum_gx += g * (x(base + c) - m) * r;
        }
        sum_g /= T(C);
        sum_gx /= T(C);
        for (int64_t c = 0; c < C; ++c) {
          const T xhat = (x(base + c) - m) * r;
          dx(base + c) += r * (dy(base + c) * w(c) - sum_g - xhat * sum_gx);
        }
      });
  // Parameter gradients reduce over rows. Each thread owns a block of channels and walks the rows: contiguous
  // reads, no two threads adding into one element (deterministic), vectorised on the host.
  constexpr int64_t kBlock = 64;
  Kokkos::parallel_for(
      "strata::layernorm::backward_params", range((C + kBlock - 1) / kBlock), KOKKOS_LAMBDA(const int64_t blk) {
        const int64_t begin = blk * kBlock, end = begin + kBlock < C ? begin + kBlock : C;
        T acc_w[kBlock] = {}, acc_b[kBlock] = {};
        for (int64_t n = 0; n < N; ++n) {
          const T m = mean(n), r = rstd(n);
          for (int64_t c = begin; c < end; ++c) {
            const T g = dy(n * C + c);
            acc_w[c - begin] += g * (x(n * C + c) - m) * r;
            acc_b[c - begin] += g;
          }
        }
        for (int64_t c = begin; c < end; ++c) {
          dw(c) += acc_w[c - begin];
          db(c) += acc_b[c - begin];
        }
      });
}

}  // namespace strata
