// Conv2d layer (src/nn/conv2d.hpp; im2col + one batched GEMM): forward against a direct 7-nested-loop convolution
// in double, float and double, with and without bias; backward dx (overwrite, accumulate, skipped), dW and db
// (accumulating) against central finite differences of L = sum(R * y); bit-identical results across runs; the
// workspace size check. Odd shapes: batch 1-3, non-square images and kernels, stride 1/2/3, padding 0/1/2,
// kernel 1/3/5, channel counts that are multiples of nothing.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "nn/conv2d.hpp"
#include "unit/kernels/test_util.hpp"

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
          conv(2, 1, 4, 3, 2, 5, 5, 1, 2)};
}

std::string describe(const Conv2dShape& s) {
  return "B" + std::to_string(s.batch) + " C" + std::to_string(s.in_channels) + " " + std::to_string(s.height) + "x" +
         std::to_string(s.width) + " O" + std::to_string(s.out_channels) + " k" + std::to_string(s.kernel_h) + "x" +
         std::to_string(s.kernel_w) + " s" + std::to_string(s.stride) + " p" + std::to_string(s.padding);
}

struct ConvData {
  std::vector<double> x, w, b;
  explicit ConvData(const Conv2dShape& s, bool with_bias = true)
      : x(rounded_to_float(random_vector(size_t(s.input_size()), 501))),
        w(rounded_to_float(random_vector(size_t(s.weight_size()), 502))),
        b(with_bias ? rounded_to_float(random_vector(s.out_channels, 503)) : std::vector<double>{}) {}
};

// y[b, o, oh, ow] = bias[o] + sum_{c, i, j} x[b, c, oh*s - p + i, ow*s - p + j] w[o, c, i, j] (zero padding).
std::vector<double> reference_conv(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& bias) {
  const int C = s.in_channels, H = s.height, W = s.width, KH = s.kernel_h, KW = s.kernel_w;
  const int Ho = s.out_h(), Wo = s.out_w();
  std::vector<double> y(size_t(s.output_size()));
  for (int b = 0; b < s.batch; ++b)
    for (int o = 0; o < s.out_channels; ++o)
      for (int oh = 0; oh < Ho; ++oh)
        for (int ow = 0; ow < Wo; ++ow) {
          double acc = bias.empty() ? 0.0 : bias[o];
          for (int c = 0; c < C; ++c)
            for (int i = 0; i < KH; ++i)
              for (int j = 0; j < KW; ++j) {
                const int ih = oh * s.stride - s.padding + i, iw = ow * s.stride - s.padding + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((size_t(b) * C + c) * H + ih) * W + iw] * w[((size_t(o) * C + c) * KH + i) * KW + j];
              }
          y[((size_t(b) * s.out_channels + o) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

template <class T>
std::vector<double> run_forward(const Conv2dShape& s, const ConvData& d) {
  Vec<T> y = to_view<T>(random_vector(size_t(s.output_size()), 504, 5, 6));  // garbage: overwritten
  Vec<T> ws = to_view<T>(random_vector(conv2d_workspace_size(s), 505, 5, 6));
  conv2d_forward<T>(y, to_view<T>(d.x), to_view<T>(d.w), to_view<T>(d.b), s, ws);
  return to_host(y);
}

TEST(Conv2dLayer, ForwardMatchesDirectConvolution) {
  for (const auto& s : shapes()) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(describe(s) + (with_bias ? " bias" : " no bias"));
      const ConvData d(s, with_bias);
      const auto ref = reference_conv(s, d.x, d.w, d.b);
      EXPECT_LT(rel_error(run_forward<float>(s, d), ref), kFloatTol);
      EXPECT_LT(rel_error(run_forward<double>(s, d), ref), kDoubleTol);
    }
  }
}

TEST(Conv2dLayer, WorkspaceSizeIsColsPlusGemmOutput) {
  const auto s = conv(3, 5, 9, 6, 7, 3, 3, 2, 0);  // K = 45, N = 3 * 4 * 2 = 24
  EXPECT_EQ(conv2d_workspace_size(s), size_t((45 + 7) * 24));
  const ConvData d(s);
  Vec<double> y("y", size_t(s.output_size())), ws("ws", conv2d_workspace_size(s) - 1);
  EXPECT_THROW(conv2d_forward<double>(y, to_view<double>(d.x), to_view<double>(d.w), to_view<double>(d.b), s, ws),
               Error);
}

struct Grads {
  std::vector<double> dx, dw, db;
};

// Runs forward then backward in double with dy = R, starting from the given gradient contents.
Grads run_backward(const Conv2dShape& s, const ConvData& d, const std::vector<double>& R, const Grads& init,
                   bool accumulate_dx) {
  Vec<double> x = to_view<double>(d.x), w = to_view<double>(d.w);
  Vec<double> ws = to_view<double>(random_vector(conv2d_workspace_size(s), 506, 5, 6));
  Vec<double> y("y", size_t(s.output_size()));
  conv2d_forward<double>(y, x, w, to_view<double>(d.b), s, ws);
  Vec<double> dx = to_view<double>(init.dx), dw = to_view<double>(init.dw), db = to_view<double>(init.db);
  conv2d_backward<double>(dx, dw, db, to_view<double>(R), x, w, s, ws, accumulate_dx);
  return {to_host(dx), to_host(dw), to_host(db)};
}

std::vector<double> minus(std::vector<double> a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return a;
}

TEST(Conv2dLayer, BackwardMatchesFiniteDifferences) {
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    ConvData d(s);
    const auto R = random_vector(size_t(s.output_size()), 507);
    auto loss = [&] { return dot(reference_conv(s, d.x, d.w, d.b), R); };
    const auto fd_x = finite_difference(d.x, loss);
    const auto fd_w = finite_difference(d.w, loss);
    const auto fd_b = finite_difference(d.b, loss);

    // dx overwritten (garbage start), dW and db accumulated onto nonzero values.
    const Grads init{random_vector(d.x.size(), 508, 5, 6), random_vector(d.w.size(), 509),
                     random_vector(d.b.size(), 510)};
    const Grads g = run_backward(s, d, R, init, /*accumulate_dx=*/false);
    EXPECT_LT(rel_error(g.dx, fd_x), kGradTol);
    EXPECT_LT(rel_error(minus(g.dw, init.dw), fd_w), kGradTol);
    EXPECT_LT(rel_error(minus(g.db, init.db), fd_b), kGradTol);
    EXPECT_LT(rel_error(g.dw, add(init.dw, fd_w)), kGradTol);
    EXPECT_LT(rel_error(g.db, add(init.db, fd_b)), kGradTol);

    // accumulate_dx adds onto the existing dx.
    const Grads acc = run_backward(s, d, R, init, /*accumulate_dx=*/true);
    EXPECT_LT(rel_error(minus(acc.dx, init.dx), fd_x), kGradTol);
  }
}

TEST(Conv2dLayer, BackwardWithoutBiasAndWithoutInputGradient) {
  const auto s = conv(3, 5, 9, 6, 7, 3, 3, 2, 1);
  ConvData d(s, /*with_bias=*/false);
  const auto R = random_vector(size_t(s.output_size()), 511);
  auto loss = [&] { return dot(reference_conv(s, d.x, d.w, d.b), R); };
  const auto fd_w = finite_difference(d.w, loss);

  // Empty dx (first layer) and empty db (no bias): only dW is formed.
  Vec<double> x = to_view<double>(d.x), w = to_view<double>(d.w), ws("ws", conv2d_workspace_size(s));
  Vec<double> dx("dx", 0), db("db", 0), dw("dw", d.w.size());
  conv2d_backward<double>(dx, dw, db, to_view<double>(R), x, w, s, ws);
  EXPECT_LT(rel_error(to_host(dw), fd_w), kGradTol);
}

TEST(Conv2dLayer, BackwardFloatMatchesDouble) {
  const auto s = conv(2, 3, 8, 11, 5, 5, 5, 2, 2);
  const ConvData d(s);
  const auto R = rounded_to_float(random_vector(size_t(s.output_size()), 512));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> x = to_view<T>(d.x), w = to_view<T>(d.w), ws("ws", conv2d_workspace_size(s));
    Vec<T> dx("dx", d.x.size()), dw("dw", d.w.size()), db("db", d.b.size());
    conv2d_backward<T>(dx, dw, db, to_view<T>(R), x, w, s, ws);
    return std::vector<std::vector<double>>{to_host(dx), to_host(dw), to_host(db)};
  };
  const auto f = run(float{}), r = run(double{});
  for (int i = 0; i < 3; ++i) EXPECT_LT(rel_error(f[i], r[i]), kFloatTol) << "gradient " << i;
}

TEST(Conv2dLayer, ResultsAreBitIdenticalAcrossRuns) {
  const auto s = conv(3, 5, 9, 6, 7, 3, 3, 2, 1);
  const ConvData d(s);
  const auto R = rounded_to_float(random_vector(size_t(s.output_size()), 513));
  auto run = [&] {
    Vec<float> x = to_view<float>(d.x), w = to_view<float>(d.w), ws("ws", conv2d_workspace_size(s));
    Vec<float> y("y", size_t(s.output_size())), dx("dx", d.x.size()), dw("dw", d.w.size()), db("db", d.b.size());
    conv2d_forward<float>(y, x, w, to_view<float>(d.b), s, ws);
    conv2d_backward<float>(dx, dw, db, to_view<float>(R), x, w, s, ws);
    return std::vector<std::vector<double>>{to_host(y), to_host(dx), to_host(dw), to_host(db)};
  };
  const auto first = run(), second = run();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(first[i], second[i]) << "output " << i;
}

}  // namespace
}  // namespace strata
