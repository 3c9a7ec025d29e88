#pragma once
// The data movement around a 2-D convolution done as GEMM (torch.nn.Conv2d: zero padding on all sides,
// dilation 1, groups 1). The layer (src/nn/conv2d.hpp) runs im2col, one GEMM over the whole batch, then a
// permutation back to NCHW; its backward runs the adjoints here. Every kernel writes each output element from
// exactly one thread (col2im is a gather, not a scatter): no atomics, deterministic.
#include <cstdint>

#include "kernels/common.hpp"

namespace strata {

struct Conv2dShape {
  int batch = 0, in_channels = 0, height = 0, width = 0;
  int out_channels = 0, kernel_h = 0, kernel_w = 0;
  int stride = 1, padding = 0;

  // out = (in + 2p - k) / stride + 1 (floor), as torch.nn.Conv2d.
  int out_h() const { return (height + 2 * padding - kernel_h) / stride + 1; }
  int out_w() const { return (width + 2 * padding - kernel_w) / stride + 1; }
  // The GEMM's inner dimension K = C*kh*kw (rows of cols) and its column count N = B*Ho*Wo.
  int64_t col_rows() const { return int64_t(in_channels) * kernel_h * kernel_w; }
  int64_t col_cols() const { return int64_t(batch) * out_h() * out_w(); }
  int64_t input_size() const { return int64_t(batch) * in_channels * height * width; }
  int64_t output_size() const { return int64_t(batch) * out_channels * out_h() * out_w(); }
  int64_t weight_size() const { return int64_t(out_channels) * col_rows(); }
};

namespace detail {
// The output columns ow whose tap j reads inside a row of width W: 0 <= ow*stride - pad + j < W for ow in [lo, hi).
KOKKOS_INLINE_FUNCTION void valid_columns(int64_t W, int64_t Wo, int64_t stride, int64_t pad, int64_t j, int64_t& lo,
                                          int64_t& hi) {
  lo = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;
  const int64_t last = W - 1 + pad - j;  // the largest ow*stride that stays inside
  hi = last < 0 ? 0 : (last / stride + 1 < Wo ? last / stride + 1 : Wo);
  if (lo > hi) lo = hi;
}
}  // namespace detail

// cols[C*kh*kw, B*Ho*Wo] from x[B, C, H, W]: row (c*kh + i)*kw + j, column b*Ho*Wo + oh*Wo + ow holds
// x[b, c, oh*stride - pad + i, ow*stride - pad + j], zero where that falls in the padding. One thread per (row, b):
// it writes that image's Ho*Wo contiguous columns of the row, run by run, so the index arithmetic is per run and
// the copies are contiguous (vectorised on the host).
template <class T>
void im2col(const Vec<T>& cols, const Vec<T>& x, const Conv2dShape& s) {
  const int64_t C = s.in_channels, H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w, B = s.batch;
  const int64_t Ho = s.out_h(), Wo = s.out_w(), P = Ho * Wo, N = s.col_cols();
  const int64_t stride = s.stride, pad = s.padding;
  Kokkos::parallel_for(
      "strata::conv2d::im2col", range(size_t(s.col_rows() * B)), KOKKOS_LAMBDA(const int64_t r) {
        const int64_t b = r % B, row = r / B;
        const int64_t j = row % KW, i = (row / KW) % KH, c = row / (KW * KH);
        int64_t lo = 0, hi = 0;
        detail::valid_columns(W, Wo, stride, pad, j, lo, hi);
        const int64_t plane = (b * C + c) * H * W - pad + j;  // + ih*W + ow*stride: x[b, c, ih, ow*stride - pad + j]
        for (int64_t oh = 0; oh < Ho; ++oh) {
          const int64_t ih = oh * stride - pad + i, out = row * N + b * P + oh * Wo;
          if (ih < 0 || ih >= H) {
            for (int64_t ow = 0; ow < Wo; ++ow) cols(out + ow) = T(0);
            continue;
          }
          const int64_t in = plane + ih * W;
          for (int64_t ow = 0; ow < lo; ++ow) cols(out + ow) = T(0);
          if (stride == 1) {  // a contiguous copy
            for (int64_t ow = lo; ow < hi; ++ow) cols(out + ow) = x(in + ow);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) cols(out + ow) = x(in + ow * stride);
          }
          for (int64_t ow = hi; ow < Wo; ++ow) cols(out + ow) = T(0);
        }
      });
}

// dx[B, C, H, W] = (or += when accumulate) the adjoint of im2col applied to dcols[C*kh*kw, B*Ho*Wo]: each
// input element sums the entries of dcols that im2col copied it to. One thread owns each input plane (b, c) and
// adds the taps into each row in a fixed order (i, then j, then ow): no atomics, the same rounding every run.
template <class T>
void col2im(const Vec<T>& dx, const Vec<T>& dcols, const Conv2dShape& s, bool accumulate = false) {
  const int64_t C = s.in_channels, H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w;
  const int64_t Ho = s.out_h(), Wo = s.out_w(), P = Ho * Wo, N = s.col_cols();
  const int64_t stride = s.stride, pad = s.padding;
  Kokkos::parallel_for(
      "strata::conv2d::col2im", range(size_t(s.batch) * C), KOKKOS_LAMBDA(const int64_t bc) {
        const int64_t c = bc % C, b = bc / C;
        for (int64_t ih = 0; ih < H; ++ih) {
          const int64_t base = (bc * H + ih) * W;
          if (!accumulate)
            for (int64_t iw = 0; iw < W; ++iw) dx(base + iw) = T(0);
          // Tap i reads this row from output row oh when oh*stride = ih + pad - i.
          for (int64_t i = 0; i < KH; ++i) {
            const int64_t th = ih + pad - i;
            if (th < 0) break;  // th only decreases with i
            if (th % stride != 0 || th / stride >= Ho) continue;
            const int64_t oh = th / stride;
            for (int64_t j = 0; j < KW; ++j) {
              int64_t lo = 0, hi = 0;
              detail::valid_columns(W, Wo, stride, pad, j, lo, hi);
              const int64_t from = ((c * KH + i) * KW + j) * N + b * P + oh * Wo, to = base - pad + j;
              if (stride == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) dx(to + ow) += dcols(from + ow);
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) dx(to + ow * stride) += dcols(from + ow);
              }
            }
          }
        }
      });
}

// y[B, O, P] = z[O, B*P] + bias[O]: the batched GEMM's output back to NCHW (P = Ho*Wo). An empty bias
// (extent 0) adds nothing. One thread per plane (b, o), contiguous on both sides.
template <class T>
void conv_output_to_nchw(const Vec<T>& y, const Vec<T>& z, const Vec<T>& bias, int batch, int out_channels,
                         int64_t plane) {
  const int64_t O = out_channels, P = plane, N = int64_t(batch) * P;
  const bool has_bias = bias.extent(0) > 0;
  Kokkos::parallel_for(
      "strata::conv2d::output_to_nchw", range(size_t(batch * O)), KOKKOS_LAMBDA(const int64_t bo) {
        const int64_t o = bo % O, b = bo / O, from = o * N + b * P, to = bo * P;
        const T add = has_bias ? bias(o) : T(0);
        for (int64_t p = 0; p < P; ++p) y(to + p) = z(from + p) + add;
      });
}

// dz[O, B*P] = dy[B, O, P] rearranged into the GEMM layout (the adjoint of conv_output_to_nchw without the bias).
template <class T>
void conv_grad_from_nchw(const Vec<T>& dz, const Vec<T>& dy, int batch, int out_channels, int64_t plane) {
  const int64_t O = out_channels, P = plane, N = int64_t(batch) * P;
  Kokkos::parallel_for(
      "strata::conv2d::grad_from_nchw", range(size_t(batch * O)), KOKKOS_LAMBDA(const int64_t bo) {
        const int64_t o = bo % O, b = bo / O, to = o * N + b * P, from = bo * P;
        for (int64_t p = 0; p < P; ++p) dz(to + p) = dy(from + p);
      });
}

// dbias[O] += sum over the row of dz[O, N]. One thread per channel walks its contiguous row in order:
// deterministic, no atomics (parallel only over O; fine for the channel counts of a CNN).
template <class T>
void conv_bias_backward(const Vec<T>& dbias, const Vec<T>& dz, int out_channels, int64_t cols) {
  const int64_t N = cols;
  Kokkos::parallel_for(
      "strata::conv2d::bias_backward", range(size_t(out_channels)), KOKKOS_LAMBDA(const int64_t o) {
        T acc = 0;
        STRATA_SIMD_REDUCE(+, acc)
        for (int64_t n = 0; n < N; ++n) acc += dz(o * N + n);
        dbias(o) += acc;
      });
}

}  // namespace strata
