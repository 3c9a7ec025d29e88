#include "data/image_ops.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/rng.hpp"
#include "support/expect_error.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;

std::vector<float> random_floats(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const uint64_t key = rng::make_key(seed, "image_ops_test");
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(lo + (hi - lo) * rng::uniform(key, i));
  return v;
}

// The resize formula written out in float64, one output pixel at a time, for comparison.
std::vector<float> resize_reference(const std::vector<float>& in, int c, int h, int w, int oh, int ow) {
  auto source = [](int dst, int in_size, int out_size, int& i0, int& i1, double& l1) {
    const double src = std::max((dst + 0.5) * (double(in_size) / out_size) - 0.5, 0.0);
    i0 = static_cast<int>(std::floor(src));
    i1 = i0 + 1 < in_size ? i0 + 1 : in_size - 1;
    l1 = src - i0;
  };
  std::vector<float> out(size_t(c) * oh * ow);
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x) {
        int y0, y1, x0, x1;
        double ly, lx;
        source(y, h, oh, y0, y1, ly);
        source(x, w, ow, x0, x1, lx);
        auto at = [&](int yy, int xx) { return double(in[(size_t(ch) * h + yy) * w + xx]); };
        const double v =
            (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
        out[(size_t(ch) * oh + y) * ow + x] = static_cast<float>(v);
      }
  return out;
}

TEST(ImageOps, ChannelStatsOfAKnownArray) {
  // x[2, 2, 1, 2]: channel 0 holds {1, 2, 3, 4}, channel 1 holds {10, 10, 10, 10}.
  const std::vector<float> x = {1, 2, 10, 10, 3, 4, 10, 10};
  const ChannelStats s = channel_stats(x.data(), 2, 2, 1, 2);
  ASSERT_EQ(s.mean.size(), 2u);
  EXPECT_DOUBLE_EQ(s.mean[0], 2.5);
  EXPECT_DOUBLE_EQ(s.std[0], std::sqrt(1.25));  // population: (2.25 + 0.25 + 0.25 + 2.25) / 4
  EXPECT_DOUBLE_EQ(s.mean[1], 10.0);
  EXPECT_EQ(s.std[1], 0.0);
}

TEST(ImageOps, ChannelStatsStayAccurateOnALargeOffset) {
  // Values 1e4 + U(-1, 1): a float32 or one-pass sum(x^2) - n*mean^2 would lose the variance to cancellation.
  const int n = 64, c = 3, h = 8, w = 8;
  std::vector<float> x = random_floats(size_t(n) * c * h * w, 1, 1e4 - 1, 1e4 + 1);
  const ChannelStats s = channel_stats(x.data(), n, c, h, w);
  for (int ch = 0; ch < c; ++ch) {
    double sum = 0, squares = 0;
    const int count = n * h * w;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < h * w; ++k) sum += x[(size_t(i) * c + ch) * h * w + k];
    const double mean = sum / count;
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < h * w; ++k) squares += std::pow(x[(size_t(i) * c + ch) * h * w + k] - mean, 2);
    EXPECT_NEAR(s.mean[ch], mean, 1e-9 * mean);
    EXPECT_NEAR(s.std[ch], std::sqrt(squares / count), 1e-9);
    EXPECT_NEAR(s.std[ch], 1 / std::sqrt(3.0), 0.03);  // U(-1, 1) has std 1/sqrt(3); 4096 samples
  }
}

TEST(ImageOps, ChannelStatsRejectEmptyInput) {
  const float x = 0;
  expect_error([&] { channel_stats(&x, 0, 3, 4, 4); }, {"channel_stats", "no pixels"});
  expect_error([&] { channel_stats(&x, 1, 0, 4, 4); }, {"channel_stats", "bad shape"});
}

TEST(ImageOps, NhwcToNchwTransposesEveryImage) {
  const int n = 2, h = 3, w = 4, c = 3;
  std::vector<float> in(size_t(n) * h * w * c);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i);
  std::vector<float> out(in.size(), -1.0f);
  nhwc_to_nchw(in.data(), n, h, w, c, out.data());
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int ch = 0; ch < c; ++ch)
          EXPECT_EQ(out[((size_t(i) * c + ch) * h + y) * w + x], in[((size_t(i) * h + y) * w + x) * c + ch]);
}

TEST(ImageOps, ResizeMatchesTorchOnAKnownCase) {
  // in[2, 3, 4]: channel 0 = 0..11, channel 1 = 0.5 * (0..11)^2 - 3, resized to 5 x 3 (rows up, columns down).
  std::vector<float> in(24);
  for (int i = 0; i < 12; ++i) in[i] = float(i), in[12 + i] = 0.5f * i * i - 3;
  // torch.nn.functional.interpolate(in[None], size=(5, 3), mode="bilinear", align_corners=False), torch 1.13,
  // computed during development and pasted here.
  const std::vector<float> torch = {0.1666666865348816f,
                                    1.5f,
                                    2.8333334922790527f,
                                    1.7666667699813843f,
                                    3.1000001430511475f,
                                    4.433333396911621f,
                                    4.1666669845581055f,
                                    5.5f,
                                    6.833333969116211f,
                                    6.566667079925537f,
                                    7.900000095367432f,
                                    9.2333345413208f,
                                    8.166666984558105f,
                                    9.5f,
                                    10.833333969116211f,
                                    -2.9166667461395264f,
                                    -1.7499998807907104f,
                                    1.0833334922790527f,
                                    0.5500002503395081f,
                                    3.8500006198883057f,
                                    8.816666603088379f,
                                    5.750001430511475f,
                                    12.250001907348633f,
                                    20.416667938232422f,
                                    20.550003051757812f,
                                    30.250003814697266f,
                                    41.616668701171875f,
                                    30.416667938232422f,
                                    42.25f,
                                    55.75f};
  std::vector<float> out(30);
  resize_bilinear(in.data(), 2, 3, 4, out.data(), 5, 3);
  // torch computes in float32, we in float64: a few float32 ulps apart.
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_NEAR(out[i], torch[i], 1e-6 * std::max(1.0f, std::fabs(torch[i]))) << i;
}

TEST(ImageOps, ResizeMatchesADoubleReference) {
  const int c = 3, h = 7, w = 10;
  const std::vector<float> in = random_floats(size_t(c) * h * w, 2, -5, 5);
  for (auto [oh, ow] : std::vector<std::pair<int, int>>{{14, 20}, {3, 4}, {5, 13}, {1, 1}, {7, 3}, {32, 1}, {2, 10}}) {
    std::vector<float> out(size_t(c) * oh * ow);
    resize_bilinear(in.data(), c, h, w, out.data(), oh, ow);
    const std::vector<float> ref = resize_reference(in, c, h, w, oh, ow);
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_NEAR(out[i], ref[i], 1e-6 * std::max(1.0f, std::fabs(ref[i]))) << oh << "x" << ow << " " << i;
  }
}

TEST(ImageOps, ResizeToTheSameSizeIsExact) {
  const int c = 2, h = 5, w = 6;
  std::vector<float> in = random_floats(size_t(c) * h * w, 3);
  in[7] = std::numeric_limits<float>::infinity();  // stays alone: no 0 * Inf from a neighbour
  std::vector<float> out(in.size());
  resize_bilinear(in.data(), c, h, w, out.data(), h, w);
  EXPECT_EQ(out, in);
}

TEST(ImageOps, ResizeKeepsAConstantImageConstant) {
  const int c = 2, h = 5, w = 7;
  const std::vector<float> in(size_t(c) * h * w, 0.3f);
  for (auto [oh, ow] : std::vector<std::pair<int, int>>{{11, 3}, {2, 2}, {64, 64}, {1, 9}}) {
    std::vector<float> out(size_t(c) * oh * ow);
    resize_bilinear(in.data(), c, h, w, out.data(), oh, ow);
    for (float v : out) ASSERT_EQ(v, 0.3f) << oh << "x" << ow;
  }
}

TEST(ImageOps, ResizeRejectsEmptySizes) {
  float x = 0, y = 0;
  expect_error([&] { resize_bilinear(&x, 1, 1, 1, &y, 0, 1); }, {"resize_bilinear", "1x1 -> 0x1"});
}

TEST(ImageOps, FirstNonFiniteFindsNaNAndInf) {
  std::vector<float> x(10, 1.0f);
  EXPECT_EQ(first_non_finite(x.data(), 10), -1);
  EXPECT_EQ(first_non_finite(x.data(), 0), -1);
  x[6] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(first_non_finite(x.data(), 10), 6);
  EXPECT_EQ(first_non_finite(x.data(), 6), -1);
  x[4] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_non_finite(x.data(), 10), 4);
  x[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_non_finite(x.data(), 10), 0);
  x[9] = std::numeric_limits<float>::max();  // large but finite
  EXPECT_EQ(first_non_finite(x.data() + 7, 3), -1);
}

}  // namespace
}  // namespace strata::data
