#pragma once
// 2-D convolution layer, torch.nn.Conv2d convention (W [O, C, kh, kw], zero padding, dilation 1, groups 1),
// done as im2col + ONE GEMM over the whole batch: W[O, C*kh*kw] x cols[C*kh*kw, B*Ho*Wo] -> z[O, B*Ho*Wo],
// then a permutation (+ bias) back to NCHW. Scratch comes from the caller (planned memory), never allocated here.
#include <cstddef>

#include "core/error.hpp"
#include "kernels/common.hpp"
#include "kernels/conv2d.hpp"
#include "kernels/gemm.hpp"

namespace strata {

// Elements of T scratch that conv2d_forward and conv2d_backward need: cols[C*kh*kw, B*P] + z[O, B*P]
// (backward reuses cols for dcols once dW has been formed).
inline size_t conv2d_workspace_size(const Conv2dShape& s) {
  return size_t((s.col_rows() + s.out_channels) * s.col_cols());
}

namespace detail {
template <class T>
void check_conv2d_workspace(const Vec<T>& workspace, const Conv2dShape& s) {
  STRATA_CHECK(s.stride > 0 && s.out_h() > 0 && s.out_w() > 0, "conv2d: kernel {}x{} larger than padded input {}x{}",
               s.kernel_h, s.kernel_w, s.height + 2 * s.padding, s.width + 2 * s.padding);
  STRATA_CHECK(workspace.extent(0) >= conv2d_workspace_size(s), "conv2d: workspace has {} elements, needs {}",
               workspace.extent(0), conv2d_workspace_size(s));
}
}  // namespace detail

// y[B, O, Ho, Wo] = conv(x[B, C, H, W], w[O, C, kh, kw]) + b[O]. An empty b (extent 0) means no bias.
// workspace: at least conv2d_workspace_size(s) elements.
template <class T>
void conv2d_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, const Conv2dShape& s,
                    const Vec<T>& workspace) {
  detail::check_conv2d_workspace(workspace, s);
  const int64_t K = s.col_rows(), N = s.col_cols();
  const Vec<T> cols = view_of(workspace.data(), size_t(K * N)),
               z = view_of(workspace.data() + K * N, size_t(s.out_channels * N));
  im2col(cols, x, s);
  // z[O, N] = W[O, K] cols[K, N]
  gemm<T>({Trans::No, Trans::No, s.out_channels, int(N), int(K), int(K), int(N), int(N)}, T(1), w.data(), cols.data(),
          T(0), z.data());
  conv_output_to_nchw(y, z, b, s.batch, s.out_channels, int64_t(s.out_h()) * s.out_w());
}

// From dy[B, O, Ho, Wo]: dw[O, C, kh, kw] += dz cols^T, db[O] += sums of dy (skipped when db is empty), and
// dx[B, C, H, W] = col2im(W^T dz) (overwritten, or added when accumulate_dx; skipped when dx is empty, as for a
// first layer). im2col of x is recomputed here rather than kept from forward: memory over FLOPs.
template <class T>
void conv2d_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                     const Vec<T>& w, const Conv2dShape& s, const Vec<T>& workspace, bool accumulate_dx = false) {
  detail::check_conv2d_workspace(workspace, s);
  const int64_t K = s.col_rows(), N = s.col_cols();
  const Vec<T> cols = view_of(workspace.data(), size_t(K * N)),
               dz = view_of(workspace.data() + K * N, size_t(s.out_channels * N));
  conv_grad_from_nchw(dz, dy, s.batch, s.out_channels, int64_t(s.out_h()) * s.out_w());
  im2col(cols, x, s);
  // dW[O, K] += dz[O, N] cols[K, N]^T
  gemm<T>({Trans::No, Trans::Yes, s.out_channels, int(K), int(N), int(N), int(N), int(K)}, T(1), dz.data(), cols.data(),
          T(1), dw.data());
  if (db.extent(0) > 0) conv_bias_backward(db, dz, s.out_channels, N);
  if (dx.extent(0) == 0) return;
  // dcols[K, N] = W[O, K]^T dz[O, N], into the cols buffer (no longer needed)
  gemm<T>({Trans::Yes, Trans::No, int(K), int(N), s.out_channels, int(K), int(N), int(N)}, T(1), w.data(), dz.data(),
          T(0), cols.data());
  col2im(dx, cols, s, accumulate_dx);
}

}  // namespace strata
