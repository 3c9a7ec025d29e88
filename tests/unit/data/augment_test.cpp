#include "data/augment.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/rng.hpp"
#include "support/expect_error.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;

std::vector<float> random_image(int c, int h, int w, uint64_t seed) {
  const uint64_t key = rng::make_key(seed, "augment_test");
  std::vector<float> v(size_t(c) * h * w);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(2 * rng::uniform(key, i) - 1);
  return v;
}

std::vector<float> augmented(std::vector<float> x, int c, int h, int w, const AugmentOptions& o, uint64_t sample) {
  std::vector<float> scratch(x.size());
  augment_image(x.data(), c, h, w, o, sample, scratch.data());
  return x;
}

// The documented contract written out independently: an explicit zero-padded copy in double, the window read
// from it (mirrored when flipped), then the noise.
std::vector<float> augment_reference(const std::vector<float>& x, int c, int h, int w, const AugmentOptions& o,
                                     uint64_t sample) {
  const int p = o.crop_padding, ph = h + 2 * p, pw = w + 2 * p;
  std::vector<double> padded(size_t(c) * ph * pw, 0.0);
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < h; ++y)
      for (int xx = 0; xx < w; ++xx) padded[(size_t(ch) * ph + y + p) * pw + xx + p] = x[(size_t(ch) * h + y) * w + xx];
  const uint64_t key = rng::make_key(o.seed, "strata::augment");
  const uint64_t span = 2 * uint64_t(p) + 1;
  const int dy = p > 0 ? int(rng::bits(key, 4 * sample) % span) : 0;
  const int dx = p > 0 ? int(rng::bits(key, 4 * sample + 1) % span) : 0;
  const bool flip = o.flip && (rng::bits(key, 4 * sample + 2) & 1);
  const uint64_t noise_key = rng::make_key(o.seed, "strata::augment::noise");
  const uint64_t numel = uint64_t(c) * h * w;
  std::vector<float> out(numel);
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < h; ++y)
      for (int xx = 0; xx < w; ++xx) {
        const int sx = flip ? w - 1 - xx : xx;
        const size_t i = (size_t(ch) * h + y) * w + xx;
        out[i] = static_cast<float>(padded[(size_t(ch) * ph + y + dy) * pw + sx + dx]);
        if (o.noise_std > 0) out[i] += static_cast<float>(rng::normal(noise_key, sample * numel + i) * o.noise_std);
      }
  return out;
}

TEST(Augment, DefaultOptionsAreTheIdentity) {
  const AugmentOptions none;
  EXPECT_FALSE(none.any());
  std::vector<float> x = random_image(3, 4, 5, 1);
  const std::vector<float> before = x;
  augment_image(x.data(), 3, 4, 5, none, 12345, nullptr);  // no crop: no scratch needed
  EXPECT_EQ(x, before);
  AugmentOptions o;
  o.crop_padding = 1;
  EXPECT_TRUE(o.any());
  o = {};
  o.flip = true;
  EXPECT_TRUE(o.any());
  o = {};
  o.noise_std = 0.1f;
  EXPECT_TRUE(o.any());
  o = {};
  o.seed = 9;  // a seed alone changes nothing
  EXPECT_FALSE(o.any());
}

TEST(Augment, IsAPureFunctionOfSeedAndSample) {
  const int c = 3, h = 8, w = 8;
  AugmentOptions o;
  o.crop_padding = 2;
  o.flip = true;
  o.noise_std = 0.1f;
  o.seed = 5;
  const std::vector<float> x = random_image(c, h, w, 2);
  EXPECT_EQ(augmented(x, c, h, w, o, 7), augmented(x, c, h, w, o, 7));
  EXPECT_NE(augmented(x, c, h, w, o, 7), augmented(x, c, h, w, o, 8));
  AugmentOptions other_seed = o;
  other_seed.seed = 6;
  EXPECT_NE(augmented(x, c, h, w, o, 7), augmented(x, c, h, w, other_seed, 7));
  // No hidden state: visiting samples in another order (another rank split, say) gives the same images.
  std::vector<std::vector<float>> forward, backward(10);
  for (uint64_t s = 0; s < 10; ++s) forward.push_back(augmented(x, c, h, w, o, s));
  for (uint64_t s = 10; s-- > 0;) backward[s] = augmented(x, c, h, w, o, s);
  EXPECT_EQ(forward, backward);
}

TEST(Augment, MatchesAnIndependentReference) {
  for (int p : {1, 3, 5}) {  // 5 = min(h, w): some windows hold padding only
    for (bool flip : {false, true}) {
      for (float noise : {0.0f, 0.25f}) {
        const int c = 3, h = 5, w = 6;
        AugmentOptions o;
        o.crop_padding = p;
        o.flip = flip;
        o.noise_std = noise;
        o.seed = 77;
        const std::vector<float> x = random_image(c, h, w, 3);
        for (uint64_t sample = 0; sample < 300; ++sample)
          ASSERT_EQ(augmented(x, c, h, w, o, sample), augment_reference(x, c, h, w, o, sample))
              << "p=" << p << " flip=" << flip << " noise=" << noise << " sample=" << sample;
      }
    }
  }
}

TEST(Augment, FlipsHalfTheSamples) {
  AugmentOptions o;
  o.flip = true;
  o.seed = 11;
  const std::vector<float> x = {1, 2};
  int flipped = 0;
  const int samples = 10000;
  for (uint64_t s = 0; s < samples; ++s) {
    const std::vector<float> y = augmented(x, 1, 1, 2, o, s);
    ASSERT_TRUE(y == x || y == (std::vector<float>{2, 1}));
    flipped += y[0] == 2;
  }
  // Binomial(10000, 1/2): std of the rate is 0.005, so +-0.02 is four standard deviations.
  EXPECT_NEAR(double(flipped) / samples, 0.5, 0.02);
}

TEST(Augment, CropOffsetsCoverEveryPosition) {
  const int h = 6, w = 6, p = 2, span = 2 * p + 1;
  std::vector<float> x(h * w);
  for (int i = 0; i < h * w; ++i) x[i] = float(i + 1);  // pixel (y, x) holds 1 + y*w + x; padding holds 0
  AugmentOptions o;
  o.crop_padding = p;
  o.seed = 3;
  std::vector<int> count(span * span, 0);
  const int samples = 2000;
  for (uint64_t s = 0; s < samples; ++s) {
    const std::vector<float> y = augmented(x, 1, h, w, o, s);
    // Output (oy, ox) reads input (oy + dy - p, ox + dx - p): recover (dy, dx) from any image pixel.
    int k = 0;
    while (y[k] == 0) ++k;  // p <= h/2 here, so every window holds image pixels
    const int src = int(y[k]) - 1;
    const int dy = src / w - k / w + p, dx = src % w - k % w + p;
    ASSERT_TRUE(dy >= 0 && dy < span && dx >= 0 && dx < span) << dy << " " << dx;
    ++count[dy * span + dx];
  }
  // Each of the 25 offsets expects 80 hits, binomial std ~8.8: +-44 is five standard deviations.
  for (int i = 0; i < span * span; ++i) {
    EXPECT_GT(count[i], 80 - 44) << "offset " << i / span << "," << i % span;
    EXPECT_LT(count[i], 80 + 44) << "offset " << i / span << "," << i % span;
  }
}

TEST(Augment, NoiseHasTheRequestedMeanAndStd) {
  const int c = 3, h = 16, w = 16, samples = 400;
  AugmentOptions o;
  o.noise_std = 0.5f;
  o.seed = 21;
  double sum = 0, squares = 0;
  const double n = double(samples) * c * h * w;  // 307200 draws
  for (uint64_t s = 0; s < samples; ++s)
    for (float v : augmented(std::vector<float>(size_t(c) * h * w, 0.0f), c, h, w, o, s))
      sum += v, squares += double(v) * v;
  const double mean = sum / n, sd = std::sqrt(squares / n - mean * mean);
  // Standard errors: of the mean 0.5/sqrt(n) = 9e-4, of the std 0.5/sqrt(2n) = 6.4e-4; five of each.
  EXPECT_NEAR(mean, 0.0, 5 * 0.5 / std::sqrt(n));
  EXPECT_NEAR(sd, 0.5, 5 * 0.5 / std::sqrt(2 * n));
}

TEST(Augment, NormalizeMatchesADoubleReference) {
  const int c = 3, h = 4, w = 5;
  std::vector<float> x = random_image(c, h, w, 4);
  for (float& v : x) v = 100 * v + 120;
  const ChannelStats stats{{120.5, 115.25, 7.0}, {60.0, 0.3, 0.0}};  // channel 2: a constant channel
  const std::vector<float> before = x;
  normalize_image(x.data(), c, h, w, stats);
  for (int ch = 0; ch < c; ++ch)
    for (int k = 0; k < h * w; ++k) {
      const size_t i = size_t(ch) * h * w + k;
      const double sd = ch == 2 ? 1.0 : stats.std[ch];
      const float ref = static_cast<float>((double(before[i]) - stats.mean[ch]) / sd);
      EXPECT_NEAR(x[i], ref, 1e-6 * std::fabs(ref)) << i;
    }
  expect_error([&] { normalize_image(x.data(), 2, h, w, stats); }, {"normalize_image", "3 means", "2 channels"});
}

TEST(Augment, ValidateNamesTheField) {
  AugmentOptions o;
  validate(o, 8, 10);
  o.crop_padding = 8;  // min(h, w): allowed
  validate(o, 8, 10);
  o.crop_padding = 9;
  expect_error([&] { validate(o, 8, 10); }, {"crop_padding", "[0, 8]", "got 9"});
  o.crop_padding = -1;
  expect_error([&] { validate(o, 8, 10); }, {"crop_padding", "got -1"});
  o = {};
  for (float bad : {-0.1f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    o.noise_std = bad;
    expect_error([&] { validate(o, 8, 10); }, {"noise_std"});
  }
  // augment_image checks too, and a crop needs its scratch buffer.
  std::vector<float> x(64);
  o = {};
  o.crop_padding = 9;
  expect_error([&] { augment_image(x.data(), 1, 8, 8, o, 0, nullptr); }, {"crop_padding"});
  o.crop_padding = 1;
  expect_error([&] { augment_image(x.data(), 1, 8, 8, o, 0, nullptr); }, {"scratch"});
}

}  // namespace
}  // namespace strata::data
