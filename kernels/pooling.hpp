#pragma once
// 2-D max and average pooling, torch.nn.MaxPool2d / AvgPool2d defaults with padding 0: no padding, floor mode
// (trailing rows/columns that fit no whole window are dropped). Windows may overlap (stride < kernel). One thread
// per plane (b, c): forward loops run taps outermost and output columns innermost (vectorised on the host), backward
// passes add each window's gradient in window order within the plane the thread owns: no atomics, deterministic.
// A global average pool is avg pooling with kernel (H, W).
#include <cstdint>

#include "kernels/common.hpp"

namespace strata {

struct Pool2dShape {
  int batch = 0, channels = 0, height = 0, width = 0;
  int kernel_h = 0, kernel_w = 0, stride = 1;

  int out_h() const { return (height - kernel_h) / stride + 1; }
  int out_w() const { return (width - kernel_w) / stride + 1; }
  int64_t input_size() const { return int64_t(batch) * channels * height * width; }
  int64_t output_size() const { return int64_t(batch) * channels * out_h() * out_w(); }
};

// y[B, C, Ho, Wo] = max over each window of x[B, C, H, W]; argmax[B, C, Ho, Wo] = ih*W + iw of that max
// inside its input plane (as PyTorch's return_indices). Ties go to the first in row-major window order; a NaN
// wins (propagates), as in PyTorch. One thread per plane (b, c).
template <class T>
void max_pool2d_forward(const Vec<T>& y, const Vec<int32_t>& argmax, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_forward", range(size_t(int64_t(s.batch) * s.channels)), KOKKOS_LAMBDA(const int64_t plane) {
        const int64_t base = plane * H * W;
        // Taps outermost, output columns innermost: each tap updates a whole output row (vectorised on the host),
        // and every output still sees its taps in row-major window order. Strictly greater keeps the first of
        // equal maxima; a NaN wins (the last one), as PyTorch's kernel; selects, not branches.
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t out = (plane * Ho + oh) * Wo, h0 = oh * stride;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            y(out + ow) = x(base + h0 * W + ow * stride);
            argmax(out + ow) = int32_t(h0 * W + ow * stride);
          }
          for (int64_t i = 0; i < KH; ++i)
            for (int64_t j = 0; j < KW; ++j) {
              const int64_t tap = (h0 + i) * W + j;
              STRATA_PRAGMA(omp simd)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const T v = x(base + tap + ow * stride), m = y(out + ow);
                const bool take = (v > m) | (v != v);
                y(out + ow) = take ? v : m;
                argmax(out + ow) = take ? int32_t(tap + ow * stride) : argmax(out + ow);
              }
            }
        }
      });
}

// dx[B, C, H, W] = sum of dy[B, C, Ho, Wo] over the windows whose argmax is this element (overwrites dx). One
// thread owns each plane: it clears it, then adds each window's gradient at its argmax in (oh, ow) order. No
// atomics; every element sums its windows in the same order every run.
template <class T>
void max_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Vec<int32_t>& argmax, const Pool2dShape& s) {
  const int64_t HW = int64_t(s.height) * s.width, P = int64_t(s.out_h()) * s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_backward", range(size_t(int64_t(s.batch) * s.channels)),
      KOKKOS_LAMBDA(const int64_t plane) {
        const int64_t base = plane * HW, out = plane * P;
        for (int64_t k = 0; k < HW; ++k) dx(base + k) = T(0);
        for (int64_t o = 0; o < P; ++o) dx(base + argmax(out + o)) += dy(out + o);
      });
}

// y[B, C, Ho, Wo] = mean over each kh x kw window of x[B, C, H, W]. One thread per output row (plane, oh).
template <class T>
void avg_pool2d_forward(const Vec<T>& y, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_forward", range(size_t(int64_t(s.batch) * s.channels * Ho)),
      KOKKOS_LAMBDA(const int64_t r) {
        const int64_t oh = r % Ho, plane = r / Ho;
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t base = plane * H * W + oh * stride * W + ow * stride;
          T acc = 0;
          for (int64_t i = 0; i < KH; ++i)
            for (int64_t j = 0; j < KW; ++j) acc += x(base + i * W + j);
          y(r * Wo + ow) = acc / count;
        }
      });
}

// dx[B, C, H, W] = sum of dy[B, C, Ho, Wo] / (kh*kw) over the windows covering this element (overwrites dx;
// elements no window covers get 0). One thread owns each plane: it adds each window's gradient over the window in
// (oh, ow) order, then divides: no atomics, the same rounding every run.
template <class T>
void avg_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_backward", range(size_t(int64_t(s.batch) * s.channels)),
      KOKKOS_LAMBDA(const int64_t plane) {
        const int64_t base = plane * H * W, out = plane * Ho * Wo;
        for (int64_t k = 0; k < H * W; ++k) dx(base + k) = T(0);
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const T g = dy(out + oh * Wo + ow);
            const int64_t corner = base + oh * stride * W + ow * stride;
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) dx(corner + i * W + j) += g;
          }
        for (int64_t k = 0; k < H * W; ++k) dx(base + k) /= count;
      });
}

}  // namespace strata
