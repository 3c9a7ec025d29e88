#pragma once
// 2-D max and average pooling, torch.nn.MaxPool2d / AvgPool2d defaults with padding 0: no padding, floor mode
// (trailing rows/columns that fit no whole window are dropped). Windows may overlap (stride < kernel). Backward
// passes are gathers (one thread per input element walks the windows that cover it, in order): no atomics,
// deterministic. A global average pool is avg pooling with kernel (H, W).
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

namespace detail {
// The output rows [lo, hi] whose windows cover input row ih: oh*stride <= ih < oh*stride + k, 0 <= oh < out.
KOKKOS_INLINE_FUNCTION void covering_windows(int64_t ih, int64_t k, int64_t stride, int64_t out, int64_t& lo,
                                             int64_t& hi) {
  lo = ih < k ? 0 : (ih - k) / stride + 1;
  hi = ih / stride < out - 1 ? ih / stride : out - 1;
}
}  // namespace detail

// y[B, C, Ho, Wo] = max over each window of x[B, C, H, W]; argmax[B, C, Ho, Wo] = ih*W + iw of that max
// inside its input plane (as PyTorch's return_indices). Ties go to the first in row-major window order; a NaN
// wins (propagates), as in PyTorch. One thread per output row (plane, oh).
template <class T>
void max_pool2d_forward(const Vec<T>& y, const Vec<int32_t>& argmax, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_forward", range(size_t(int64_t(s.batch) * s.channels * Ho)), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t oh = r % Ho, plane = r / Ho, base = plane * H * W, h0 = oh * stride;
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = ow * stride;
          int64_t best = h0 * W + w0;
          T m = x(base + best);
          for (int64_t i = 0; i < KH; ++i)
            for (int64_t j = 0; j < KW; ++j) {
              const int64_t at = (h0 + i) * W + w0 + j;
              const T v = x(base + at);
              if (v > m || v != v) {  // strictly greater keeps the first of equal maxima
                m = v;
                best = at;
              }
            }
          y(r * Wo + ow) = m;
          argmax(r * Wo + ow) = int32_t(best);
        }
      });
}

// dx[B, C, H, W] = sum of dy[B, C, Ho, Wo] over the windows whose argmax is this element (overwrites dx). One
// thread owns each input row (plane, ih): it walks the windows covering the row, in (oh, ow) order, and adds each
// window's gradient where its argmax lies in this row. No atomics; the same order every run.
template <class T>
void max_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Vec<int32_t>& argmax, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_backward", range(size_t(int64_t(s.batch) * s.channels * H)), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t ih = r % H, plane = r / H, row = r * W;
        for (int64_t iw = 0; iw < W; ++iw) dx(row + iw) = T(0);
        int64_t oh_lo, oh_hi;
        detail::covering_windows(ih, KH, stride, Ho, oh_lo, oh_hi);
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t o = (plane * Ho + oh) * Wo + ow, at = argmax(o);
            if (at / W == ih) dx(plane * H * W + at) += dy(o);
          }
      });
}

// y[B, C, Ho, Wo] = mean over each kh x kw window of x[B, C, H, W]. One thread per output row (plane, oh).
template <class T>
void avg_pool2d_forward(const Vec<T>& y, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_forward", range(size_t(int64_t(s.batch) * s.channels * Ho)), KOKKOS_LAMBDA(const int64_t r) {
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
// elements no window covers get 0). One thread owns each input row (plane, ih) and adds the covering windows in
// (oh, ow) order, then divides: no atomics, the same rounding every run.
template <class T>
void avg_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_backward", range(size_t(int64_t(s.batch) * s.channels * H)), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t ih = r % H, plane = r / H, row = r * W;
        for (int64_t iw = 0; iw < W; ++iw) dx(row + iw) = T(0);
        int64_t oh_lo, oh_hi;
        detail::covering_windows(ih, KH, stride, Ho, oh_lo, oh_hi);
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const T g = dy((plane * Ho + oh) * Wo + ow);
            for (int64_t j = 0; j < KW; ++j) dx(row + ow * stride + j) += g;
          }
        for (int64_t iw = 0; iw < W; ++iw) dx(row + iw) /= count;
      });
}

}  // namespace strata
