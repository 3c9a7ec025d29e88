// Max and average pooling (kernels/pooling.hpp): forward (values and argmax) against direct loops in double, float
// and double; backward (overwriting dx) against finite differences. Shapes: overlapping windows (stride < kernel),
// H and W not divisible by the stride (floor mode drops the tail), rectangular kernels, a global average pool.
// Plus PyTorch's tie rule (first max in row-major window order), an element that is the max of several windows,
// and bit-identical reruns.
#include "kernels/pooling.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

Pool2dShape pool(int B, int C, int H, int W, int kh, int kw, int stride) {
  Pool2dShape s;
  s.batch = B, s.channels = C, s.height = H, s.width = W, s.kernel_h = kh, s.kernel_w = kw, s.stride = stride;
  return s;
}

std::vector<Pool2dShape> shapes() {
  return {pool(3, 5, 7, 9, 3, 3, 2),    // overlapping, 7 and 9 odd: floor mode keeps 3 x 4
          pool(3, 5, 8, 6, 2, 2, 2),    // the common 2x2/2
          pool(2, 3, 9, 7, 3, 3, 3),    // stride = kernel, 7 not divisible by 3
          pool(3, 2, 6, 5, 3, 2, 1),    // rectangular kernel, stride 1 (maximal overlap)
          pool(2, 3, 10, 11, 4, 3, 3),  // rectangular kernel, drops rows and columns
          pool(3, 4, 5, 7, 5, 7, 1)};   // global pool: kernel (H, W)
}

std::string describe(const Pool2dShape& s) {
  return "B" + std::to_string(s.batch) + " C" + std::to_string(s.channels) + " " + std::to_string(s.height) + "x" +
         std::to_string(s.width) + " k" + std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) + " s" +
         std::to_string(s.stride);
}

struct Reference {
  std::vector<double> y, argmax;
};

// Direct loops; is_max selects max (with its row-major-first argmax) or mean.
Reference reference_pool(const Pool2dShape& s, const std::vector<double>& x, bool is_max) {
  const int Ho = s.out_h(), Wo = s.out_w(), H = s.height, W = s.width;
  Reference r{std::vector<double>(size_t(s.output_size())), std::vector<double>(size_t(s.output_size()))};
  for (int plane = 0; plane < s.batch * s.channels; ++plane)
    for (int oh = 0; oh < Ho; ++oh)
      for (int ow = 0; ow < Wo; ++ow) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int at = -1;
        for (int i = 0; i < s.kernel_h; ++i)
          for (int j = 0; j < s.kernel_w; ++j) {
            const int ih = oh * s.stride + i, iw = ow * s.stride + j;
            const double v = x[(size_t(plane) * H + ih) * W + iw];
            sum += v;
            if (at < 0 || v > best) best = v, at = ih * W + iw;
          }
        const size_t o = (size_t(plane) * Ho + oh) * Wo + ow;
        r.y[o] = is_max ? best : sum / (s.kernel_h * s.kernel_w);
        r.argmax[o] = at;
      }
  return r;
}

template <class T>
Reference run_max(const Pool2dShape& s, const std::vector<double>& x) {
  Vec<T> y = to_view<T>(random_vector(size_t(s.output_size()), 601, 5, 6));
  Vec<int32_t> argmax("argmax", size_t(s.output_size()));
  max_pool2d_forward<T>(y, argmax, to_view<T>(x), s);
  return {to_host(y), to_host(argmax)};
}

template <class T>
std::vector<double> run_avg(const Pool2dShape& s, const std::vector<double>& x) {
  Vec<T> y = to_view<T>(random_vector(size_t(s.output_size()), 602, 5, 6));
  avg_pool2d_forward<T>(y, to_view<T>(x), s);
  return to_host(y);
}

TEST(Pool2dShape, OutputSizeIsFloorMode) {
  EXPECT_EQ(pool(1, 1, 7, 9, 3, 3, 2).out_h(), 3);
  EXPECT_EQ(pool(1, 1, 7, 9, 3, 3, 2).out_w(), 4);
  EXPECT_EQ(pool(1, 1, 9, 7, 3, 3, 3).out_w(), 2);
  EXPECT_EQ(pool(1, 1, 10, 11, 4, 3, 3).out_h(), 3);
  EXPECT_EQ(pool(1, 1, 10, 11, 4, 3, 3).out_w(), 3);
  EXPECT_EQ(pool(1, 1, 5, 7, 5, 7, 1).out_h(), 1);
  EXPECT_EQ(pool(1, 1, 5, 7, 5, 7, 1).out_w(), 1);
}

TEST(Pool2d, MaxForwardMatchesReference) {
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const auto x = rounded_to_float(random_vector(size_t(s.input_size()), 603));
    const auto ref = reference_pool(s, x, true);
    const auto f = run_max<float>(s, x), d = run_max<double>(s, x);
    EXPECT_EQ(max_abs_diff(f.y, ref.y), 0.0);  // a selection: exact
    EXPECT_EQ(max_abs_diff(d.y, ref.y), 0.0);
    EXPECT_EQ(f.argmax, ref.argmax);
    EXPECT_EQ(d.argmax, ref.argmax);
  }
}

TEST(Pool2d, AvgForwardMatchesReference) {
  for (const auto& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const auto x = rounded_to_float(random_vector(size_t(s.input_size()), 604));
    const auto ref = reference_pool(s, x, false).y;
    EXPECT_LT(rel_error(run_avg<float>(s, x), ref), kFloatTol);
    EXPECT_LT(rel_error(run_avg<double>(s, x), ref), kDoubleTol);
  }
}

TEST(Pool2d, GlobalAvgPoolIsThePlaneMean) {
  const auto s = pool(3, 4, 5, 7, 5, 7, 1);
  const auto x = random_vector(size_t(s.input_size()), 605);
  const auto y = run_avg<double>(s, x);
  ASSERT_EQ(y.size(), size_t(12));
  for (int plane = 0; plane < 12; ++plane) {
    double m = 0;
    for (int k = 0; k < 35; ++k) m += x[plane * 35 + k];
    EXPECT_NEAR(y[plane], m / 35, 1e-14) << "plane " << plane;
  }
}

TEST(Pool2d, MaxTiesGoToTheFirstInRowMajorOrder) {
  // One 3x4 plane, 2x2 windows, stride 1. Window (0, 0) holds a tie at (0, 1) and (1, 0): (0, 1) wins.
  // Window (0, 2) holds equal values everywhere: its top-left wins. Window (1, 1) ties between (2, 1) and
  // (2, 2): (2, 1) wins.
  const auto s = pool(1, 1, 3, 4, 2, 2, 1);
  const std::vector<double> x = {0, 5, 1, 1,  //
                                 5, 2, 1, 1,  //
                                 0, 3, 3, 0};
  const auto r = run_max<double>(s, x);
  EXPECT_EQ(r.argmax, (std::vector<double>{1, 1, 2, 4, 9, 10}));
  EXPECT_EQ(r.y, (std::vector<double>{5, 5, 1, 5, 3, 3}));
  const auto ref = reference_pool(s, x, true);
  EXPECT_EQ(r.argmax, ref.argmax);
}

TEST(Pool2d, MaxPropagatesNaN) {
  const auto s = pool(1, 1, 2, 2, 2, 2, 1);
  const auto r = run_max<float>(s, {1.0, std::nan(""), 3.0, 2.0});
  EXPECT_TRUE(std::isnan(r.y[0]));
  EXPECT_EQ(r.argmax[0], 1);
}

TEST(Pool2d, MaxBackwardSumsOverWindowsSharingAnArgmax) {
  // A 3x3 plane, 2x2 windows, stride 1: the centre is the max of all four windows and gets all four dy.
  const auto s = pool(1, 1, 3, 3, 2, 2, 1);
  std::vector<double> x = random_vector(9, 606);
  x[4] = 10.0;
  Vec<int32_t> argmax("argmax", 4);
  Vec<double> y("y", 4), dx = to_view<double>(random_vector(9, 607, 5, 6));
  max_pool2d_forward<double>(y, argmax, to_view<double>(x), s);
  max_pool2d_backward<double>(dx, to_view<double>({1.0, 2.0, 4.0, 8.0}), argmax, s);
  EXPECT_EQ(to_host(dx), (std::vector<double>{0, 0, 0, 0, 15.0, 0, 0, 0, 0}));
}

// dx from dy = R after a forward on x (dx starts as garbage: it must be overwritten).
std::vector<double> run_backward(const Pool2dShape& s, const std::vector<double>& x, const std::vector<double>& R,
                                 bool is_max) {
  Vec<double> dx = to_view<double>(random_vector(x.size(), 608, 5, 6)), dy = to_view<double>(R);
  if (is_max) {
    Vec<double> y("y", size_t(s.output_size()));
    Vec<int32_t> argmax("argmax", size_t(s.output_size()));
    max_pool2d_forward<double>(y, argmax, to_view<double>(x), s);
    max_pool2d_backward<double>(dx, dy, argmax, s);
  } else {
    avg_pool2d_backward<double>(dx, dy, s);
  }
  return to_host(dx);
}

TEST(Pool2d, BackwardMatchesFiniteDifferencesAndOverwrites) {
  for (const auto& s : shapes()) {
    for (bool is_max : {true, false}) {
      SCOPED_TRACE(describe(s) + (is_max ? " max" : " avg"));
      auto x = random_vector(size_t(s.input_size()), 609);
      const auto R = random_vector(size_t(s.output_size()), 610);
      auto loss = [&] { return dot(reference_pool(s, x, is_max).y, R); };
      const auto fd = finite_difference(x, loss);
      EXPECT_LT(rel_error(run_backward(s, x, R, is_max), fd), kGradTol);
    }
  }
}

TEST(Pool2d, BackwardFloatMatchesDouble) {
  const auto s = pool(3, 5, 7, 9, 3, 3, 2);
  const auto x = rounded_to_float(random_vector(size_t(s.input_size()), 611));
  const auto R = rounded_to_float(random_vector(size_t(s.output_size()), 612));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> y("y", R.size()), dx_max("dx_max", x.size()), dx_avg("dx_avg", x.size());
    Vec<int32_t> argmax("argmax", R.size());
    max_pool2d_forward<T>(y, argmax, to_view<T>(x), s);
    max_pool2d_backward<T>(dx_max, to_view<T>(R), argmax, s);
    avg_pool2d_backward<T>(dx_avg, to_view<T>(R), s);
    return std::vector<std::vector<double>>{to_host(dx_max), to_host(dx_avg)};
  };
  const auto f = run(float{}), d = run(double{});
  EXPECT_LT(rel_error(f[0], d[0]), kFloatTol);
  EXPECT_LT(rel_error(f[1], d[1]), kFloatTol);
}

TEST(Pool2d, ResultsAreBitIdenticalAcrossRuns) {
  const auto s = pool(3, 5, 7, 9, 3, 3, 2);
  const auto x = random_vector(size_t(s.input_size()), 613);
  const auto R = random_vector(size_t(s.output_size()), 614);
  auto run = [&] {
    Vec<float> ym("ym", R.size()), ya("ya", R.size()), dxm("dxm", x.size()), dxa("dxa", x.size());
    Vec<int32_t> argmax("argmax", R.size());
    max_pool2d_forward<float>(ym, argmax, to_view<float>(x), s);
    max_pool2d_backward<float>(dxm, to_view<float>(R), argmax, s);
    avg_pool2d_forward<float>(ya, to_view<float>(x), s);
    avg_pool2d_backward<float>(dxa, to_view<float>(R), s);
    return std::vector<std::vector<double>>{to_host(ym), to_host(dxm), to_host(ya), to_host(dxa)};
  };
  const auto first = run(), second = run();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(first[i], second[i]) << "output " << i;
}

}  // namespace
}  // namespace strata
