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
// wins (propagates), as in PyTorch.
template <class T>
void max_pool2d_forward(const Vec<T>& y, const Vec<int32_t>& argmax, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_forward", range(size_t(s.output_size())), KOKKOS_LAMBDA(const int64_t idx) {
        const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, plane = idx / (Wo * Ho);
        const int64_t base = plane * H * W, h0 = oh * stride, w0 = ow * stride;
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
        y(idx) = m;
        argmax(idx) = int32_t(best);
      });
}

// dx[B, C, H, W] = sum of dy[B, C, Ho, Wo] over the windows whose argmax is this element (overwrites dx).
template <class T>
void max_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Vec<int32_t>& argmax, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  Kokkos::parallel_for(
      "strata::pooling::max_backward", range(size_t(s.input_size())), KOKKOS_LAMBDA(const int64_t idx) {
        const int64_t iw = idx % W, ih = (idx / W) % H, plane = idx / (W * H);
        int64_t oh_lo, oh_hi, ow_lo, ow_hi;
        detail::covering_windows(ih, KH, stride, Ho, oh_lo, oh_hi);
        detail::covering_windows(iw, KW, stride, Wo, ow_lo, ow_hi);
        const int32_t self = int32_t(ih * W + iw);
        T acc = 0;
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
          for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
            const int64_t o = (plane * Ho + oh) * Wo + ow;
            if (argmax(o) == self) acc += dy(o);
          }
        dx(idx) = acc;
      });
}

// y[B, C, Ho, Wo] = mean over each kh x kw window of x[B, C, H, W].
template <class T>
void avg_pool2d_forward(const Vec<T>& y, const Vec<T>& x, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_forward", range(size_t(s.output_size())), KOKKOS_LAMBDA(const int64_t idx) {
        const int64_t ow = idx % Wo, oh = (idx / Wo) % Ho, plane = idx / (Wo * Ho);
        const int64_t base = plane * H * W + oh * stride * W + ow * stride;
        T acc = 0;
        for (int64_t i = 0; i < KH; ++i)
          for (int64_t j = 0; j < KW; ++j) acc += x(base + i * W + j);
        y(idx) = acc / count;
      });
}

// dx[B, C, H, W] = sum of dy[B, C, Ho, Wo] / (kh*kw) over the windows covering this element (overwrites dx;
// elements no window covers get 0).
template <class T>
void avg_pool2d_backward(const Vec<T>& dx, const Vec<T>& dy, const Pool2dShape& s) {
  const int64_t H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, stride = s.stride;
  const int64_t Ho = s.out_h(), Wo = s.out_w();
  const T count = T(KH * KW);
  Kokkos::parallel_for(
      "strata::pooling::avg_backward", range(size_t(s.input_size())), KOKKOS_LAMBDA(const int64_t idx) {
        const int64_t iw = idx % W, ih = (idx / W) % H, plane = idx / (W * H);
        int64_t oh_lo, oh_hi, ow_lo, ow_hi;
        detail::covering_windows(ih, KH, stride, Ho, oh_lo, oh_hi);
        detail::covering_windows(iw, KW, stride, Wo, ow_lo, ow_hi);
        T acc = 0;
        for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
          for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) acc += dy((plane * Ho + oh) * Wo + ow);
        dx(idx) = acc / count;
      });
}

}  // namespace strata
