// Convolution data movement (kernels/conv2d.hpp): output sizes as torch.nn.Conv2d; im2col against its definition
// written as plain loops; col2im against a sequential scatter reference and as the exact adjoint of im2col (overwrite
// and accumulate); the NCHW permutations (with and without bias) and the bias row sums (accumulating). Odd shapes:
// non-square images and kernels, stride 1/2/3, padding 0/1/2, kernel 1/3/5. The layer itself is tested in
// tests/unit/nn/conv2d_layer_test.cpp.
#include "kernels/conv2d.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

Conv2dShape conv(int B, int C, int H, int W, int O, int kh, int kw, int stride, int pad) {
  Conv2dShape s;
  s.batch = B, s.in_channels = C, s.height = H, s.width = W, s.out_channels = O;
  s.kernel_h = kh, s.kernel_w = kw, s.stride = stride, s.padding = pad;
  return s;
}

std::vector<Conv2dShape> shapes() {
  return {conv(3, 3, 7, 5, 4, 3, 3, 1, 1), conv(3, 5, 9, 6, 7, 3, 3, 2, 0), conv(2, 3, 8, 11, 5, 5, 5, 2, 2),
          conv(3, 7, 5, 4, 3, 1, 1, 1, 0), conv(3, 4, 7, 9, 6, 1, 1, 2, 0), conv(1, 2, 6, 7, 3, 3, 5, 3, 1),
          conv(2, 1, 4, 3, 2, 5, 5, 1, 2)};  // kernel larger than the image, all padding at the edges
}

std::string describe(const Conv2dShape& s) {
  return "B" + std::to_string(s.batch) + " C" + std::to_string(s.in_channels) + " " + std::to_string(s.height) + "x" +
         std::to_string(s.width) + " O" + std::to_string(s.out_channels) + " k" + std::to_string(s.kernel_h) + "x" +
         std::to_string(s.kernel_w) + " s" + std::to_string(s.stride) + " p" + std::to_string(s.padding);
}

// cols[(c*kh + i)*kw + j, b*P + oh*Wo + ow] = x[b, c, oh*s - p + i, ow*s - p + j] or 0: the definition, as loops.
std::vector<double> reference_im2col(const Conv2dShape& s, const std::vector<double>& x) {
  const int Ho = s.out_h(), Wo = s.out_w();
  const int64_t N = s.col_cols();
  std::vector<double> cols(size_t(s.col_rows() * N), 0.0);
  for (int c = 0; c < s.in_channels; ++c)
    for (int i = 0; i < s.kernel_h; ++i)
      for (int j = 0; j < s.kernel_w; ++j)
        for (int b = 0; b < s.batch; ++b)
          for (int oh = 0; oh < Ho; ++oh)
            for (int ow = 0; ow < Wo; ++ow) {
              const int ih = oh * s.stride - s.padding + i, iw = ow * s.stride - s.padding + j;
              if (ih < 0 || ih >= s.height || iw < 0 || iw >= s.width) continue;
              const int64_t row = (int64_t(c) * s.kernel_h + i) * s.kernel_w + j;
              cols[row * N + (int64_t(b) * Ho + oh) * Wo + ow] =
                  x[((int64_t(b) * s.in_channels + c) * s.height + ih) * s.width + iw];
            }
  return cols;
}

// The adjoint as a sequential scatter: every cols entry that came from an input element is added back to it.
std::vector<double> reference_col2im(const Conv2dShape& s, const std::vector<double>& dcols) {
  const int Ho = s.out_h(), Wo = s.out_w();
  const int64_t N = s.col_cols();
  std::vector<double> dx(size_t(s.input_size()), 0.0);
  for (int c = 0; c < s.in_channels; ++c)
    for (int i = 0; i < s.kernel_h; ++i)
      for (int j = 0; j < s.kernel_w; ++j)
        for (int b = 0; b < s.batch; ++b)
          for (int oh = 0; oh < Ho; ++oh)
            for (int ow = 0; ow < Wo; ++ow) {
              const int ih = oh * s.stride - s.padding + i, iw = ow * s.stride - s.padding + j;
              if (ih < 0 || ih >= s.height || iw < 0 || iw >= s.width) continue;
              const int64_t row = (int64_t(c) * s.kernel_h + i) * s.kernel_w + j;
              dx[((int64_t(b) * s.in_channels + c) * s.height + ih) * s.width + iw] +=
                  dcols[row * N + (int64_t(b) * Ho + oh) * Wo + ow];
            }
  return dx;
}

TEST(Conv2dShape, OutputSizeFollowsTorchFormula) {
  // torch.nn.Conv2d: floor((in + 2p - k) / s) + 1
  EXPECT_EQ(conv(1, 1, 7, 5, 1, 3, 3, 1, 1).out_h(), 7);
  EXPECT_EQ(conv(1, 1, 7, 5, 1, 3, 3, 1, 1).out_w(), 5);
  EXPECT_EQ(conv(1, 1, 9, 6, 1, 3, 3, 2, 0).out_h(), 4);
  EXPECT_EQ(conv(1, 1, 9, 6, 1, 3, 3, 2, 0).out_w(), 2);
  EXPECT_EQ(conv(1, 1, 8, 11, 1, 5, 5, 2, 2).out_h(), 4);
  EXPECT_EQ(conv(1, 1, 8, 11, 1, 5, 5, 2, 2).out_w(), 6);
  EXPECT_EQ(conv(1, 1, 6, 7, 1, 3, 5, 3, 1).out_h(), 2);
  EXPECT_EQ(conv(1, 1, 6, 7, 1, 3, 5, 3, 1).out_w(), 2);
  const auto s = conv(3, 5, 9, 6, 7, 3, 3, 2, 0);
  EXPECT_EQ(s.col_rows(), 5 * 3 * 3);
  EXPECT_EQ(s.col_cols(), 3 * 4 * 2);
  EXPECT_EQ(s.input_size(), 3 * 5 * 9 * 6);
  EXPECT_EQ(s.output_size(), 3 * 7 * 4 * 2);
  EXPECT_EQ(s.weight_size(), 7 * 5 * 3 * 3);
}

template <class T>
void expect_im2col_matches(const Conv2dShape& s) {
  const auto x = rounded_to_float(random_vector(size_t(s.input_size()), 401));
  Vec<T> cols = to_view<T>(random_vector(size_t(s.col_rows() * s.col_cols()), 402, 5, 6));  // garbage
  im2col<T>(cols, to_view<T>(x), s);
  EXPECT_EQ(max_abs_diff(to_host(cols), reference_im2col(s, x)), 0.0);  // a copy: exact
}

TEST(Conv2dKernels, Im2colMatchesDefinition) {
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    expect_im2col_matches<float>(s);
    expect_im2col_matches<double>(s);
  }
}

template <class T>
void expect_col2im_matches(const Conv2dShape& s, double tol) {
  const auto dcols = rounded_to_float(random_vector(size_t(s.col_rows() * s.col_cols()), 403));
  const auto ref = reference_col2im(s, dcols);
  Vec<T> dx = to_view<T>(random_vector(size_t(s.input_size()), 404, 5, 6));  // garbage: overwritten
  col2im<T>(dx, to_view<T>(dcols), s);
  EXPECT_LT(rel_error(to_host(dx), ref), tol);

  const auto g0 = rounded_to_float(random_vector(size_t(s.input_size()), 405));
  Vec<T> acc = to_view<T>(g0);
  col2im<T>(acc, to_view<T>(dcols), s, /*accumulate=*/true);
  EXPECT_LT(rel_error(to_host(acc), add(g0, ref)), tol);
}

TEST(Conv2dKernels, Col2imMatchesScatterReferenceOverwriteAndAccumulate) {
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    expect_col2im_matches<float>(s, kFloatTol);
    expect_col2im_matches<double>(s, kDoubleTol);
  }
}

TEST(Conv2dKernels, Col2imIsAdjointOfIm2col) {
  // <im2col(x), c> = <x, col2im(c)> for all x, c.
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const auto x = random_vector(size_t(s.input_size()), 406);
    const auto c = random_vector(size_t(s.col_rows() * s.col_cols()), 407);
    Vec<double> cols("cols", c.size()), dx("dx", x.size());
    im2col<double>(cols, to_view<double>(x), s);
    col2im<double>(dx, to_view<double>(c), s);
    const double lhs = dot(to_host(cols), c), rhs = dot(x, to_host(dx));
    EXPECT_NEAR(lhs, rhs, 1e-12 * (1 + std::abs(lhs)));
  }
}

TEST(Conv2dKernels, Col2imIsBitIdenticalAcrossRuns) {
  const auto s = conv(2, 3, 8, 11, 5, 5, 5, 2, 2);
  const auto dcols = random_vector(size_t(s.col_rows() * s.col_cols()), 408);
  Vec<float> a("a", size_t(s.input_size())), b("b", size_t(s.input_size()));
  col2im<float>(a, to_view<float>(dcols), s);
  col2im<float>(b, to_view<float>(dcols), s);
  EXPECT_EQ(to_host(a), to_host(b));
}

template <class T>
void expect_permutations_match(int B, int O, int P, bool with_bias, double tol) {
  const int64_t N = int64_t(B) * P;
  const auto z = rounded_to_float(random_vector(size_t(O * N), 409));
  const auto bias = with_bias ? rounded_to_float(random_vector(O, 410)) : std::vector<double>{};
  std::vector<double> y_ref(z.size()), dz_ref(z.size());
  for (int b = 0; b < B; ++b)
    for (int o = 0; o < O; ++o)
      for (int p = 0; p < P; ++p) {
        y_ref[(size_t(b) * O + o) * P + p] = z[o * N + b * P + p] + (with_bias ? bias[o] : 0.0);
        dz_ref[o * N + b * P + p] = z[(size_t(b) * O + o) * P + p];  // z read as dy[B, O, P]
      }
  Vec<T> y = to_view<T>(random_vector(z.size(), 411, 5, 6)), dz = to_view<T>(random_vector(z.size(), 412, 5, 6));
  conv_output_to_nchw<T>(y, to_view<T>(z), to_view<T>(bias), B, O, P);
  conv_grad_from_nchw<T>(dz, to_view<T>(z), B, O, P);
  EXPECT_LT(rel_error(to_host(y), y_ref), tol);
  if (!with_bias) {
    EXPECT_EQ(max_abs_diff(to_host(y), y_ref), 0.0);  // no bias: an exact copy
  }
  EXPECT_EQ(max_abs_diff(to_host(dz), dz_ref), 0.0);  // a permutation: exact
}

TEST(Conv2dKernels, PermutationsMatchReferenceWithAndWithoutBias) {
  expect_permutations_match<float>(3, 7, 10, true, kFloatTol);
  expect_permutations_match<double>(3, 7, 10, true, kDoubleTol);
  expect_permutations_match<double>(3, 7, 10, false, kDoubleTol);
  expect_permutations_match<double>(1, 5, 1, true, kDoubleTol);
}

template <class T>
void expect_bias_backward_accumulates(double tol) {
  constexpr int O = 7, N = 45;
  const auto dz = rounded_to_float(random_vector(size_t(O) * N, 413));
  const auto g0 = rounded_to_float(random_vector(O, 414));
  std::vector<double> ref(g0);
  for (int o = 0; o < O; ++o)
    for (int n = 0; n < N; ++n) ref[o] += dz[o * N + n];
  Vec<T> db = to_view<T>(g0);
  conv_bias_backward<T>(db, to_view<T>(dz), O, N);
  EXPECT_LT(rel_error(to_host(db), ref), tol);
}

TEST(Conv2dKernels, BiasBackwardSumsRowsAndAccumulates) {
  expect_bias_backward_accumulates<float>(kFloatTol);
  expect_bias_backward_accumulates<double>(kDoubleTol);
}

}  // namespace
}  // namespace strata
