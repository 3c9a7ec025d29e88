#pragma once
// LayerNorm over the last dimension (eps 1e-5, as torch.nn.LayerNorm).
#include "kernels/common.hpp"

namespace strata {

constexpr double kLayerNormEps = 1e-5;

// y[N, C] = (x - mean) * rstd * w + b; saves mean[N], rstd[N] for backward. w[C], b[C].
template <class T>
void layernorm_forward(const Vec<T>& y, const Vec<T>& mean, const Vec<T>& rstd, const Vec<T>& x, const Vec<T>& w,
                       const Vec<T>& b, int rows, int channels) {
  const int64_t C = channels;
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

// dx[N, C] += ..., dw[C] += ..., db[C] += ...; from dy[N, C], x, w and the saved mean/rstd.
template <class T>
void layernorm_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                        const Vec<T>& w, const Vec<T>& mean, const Vec<T>& rstd, int rows, int channels) {
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
