#pragma once
// Moving one time step of a [B, T, W] sequence tensor in and out of a [B, W] matrix (a sequence classifier reads
// the last step's state; its gradient goes back to that step only).
#include "kernels/common.hpp"

namespace strata {

// dst[B, W] = src[B, T, W][:, t, :]
template <class T>
void gather_step(const Vec<T>& dst, const Vec<T>& src, int batch, int steps, int width, int t) {
  const int64_t W = width, TW = int64_t(steps) * width, offset = int64_t(t) * width;
  Kokkos::parallel_for(
      "strata::sequence::gather_step", range(size_t(batch) * width),
      KOKKOS_LAMBDA(const int64_t i) { dst(i) = src((i / W) * TW + offset + i % W); });
}

// dst[B, T, W] = 0 everywhere but step t, which is src[B, W].
template <class T>
void scatter_step(const Vec<T>& dst, const Vec<T>& src, int batch, int steps, int width, int t) {
  const int64_t W = width, TW = int64_t(steps) * width, step = t;
  Kokkos::parallel_for(
      "strata::sequence::scatter_step", range(size_t(batch) * steps * width), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t b = i / TW, rest = i % TW;
        dst(i) = rest / W == step ? src(b * W + rest % W) : T(0);
      });
}

}  // namespace strata
