// Inverted dropout (kernels/dropout.hpp): the masks against the formula evaluated here in double, their rate, and
// that they depend only on (key, global sample, element): a batch split into microbatches, data-parallel shares or
// tensor-parallel slices draws the same mask as the whole.
#include "kernels/dropout.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kSamples = 6;
constexpr int64_t kPerSample = 50;

// What dropout_apply must give, from the formula: keep iff the counter's 16-bit lane (c mod 4 of bits(key, c / 4))
// reaches t = round(p 2^16), kept values scaled by 2^16 / (2^16 - t).
std::vector<double> reference_dropout(const std::vector<double>& x, const DropoutMask& m, int samples) {
  std::vector<double> y(x.size());
  for (int b = 0; b < samples; ++b)
    for (int64_t e = 0; e < m.local; ++e) {
      const uint64_t counter = uint64_t((m.first_sample + b) * m.per_sample + m.offset + e);
      const uint64_t lane = (rng::bits(m.key, counter / 4) >> (16 * (counter % 4))) & 0xFFFF;
      const double t = std::round(m.p * 65536);
      const size_t i = size_t(b * m.local + e);
      y[i] = double(lane) >= t ? x[i] * 65536 / (65536 - t) : 0.0;
    }
  return y;
}

template <class T>
std::vector<double> apply(const std::vector<double>& x, const DropoutMask& m, int samples) {
  Vec<T> y("y", x.size());
  dropout_apply<T>(y, to_view<T>(x), m, samples);
  return to_host(y);
}

TEST(Dropout, MatchesTheFormulaInBothPrecisions) {
  const auto x = random_vector(size_t(kSamples) * kPerSample, 601, 0.5, 1.5);  // no zeros: a dropped one shows
  const DropoutMask m = dropout_mask(11, "dropout.test", 3, 0.25, 4, kPerSample);
  const auto ref = reference_dropout(x, m, kSamples);
  EXPECT_LT(rel_error(apply<double>(x, m, kSamples), ref), kDoubleTol);
  EXPECT_LT(rel_error(apply<float>(rounded_to_float(x), m, kSamples), ref), kFloatTol);
}

TEST(Dropout, DropsAboutTheRateAndKeepsTheExpectation) {
  for (double p : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE("p = " + std::to_string(p));
    const int samples = 100;
    const int64_t per = 1000;
    const std::vector<double> ones(size_t(samples) * per, 1.0);
    const DropoutMask mask = dropout_mask(5, "dropout.rate", 1, p, 0, per);
    const auto y = apply<double>(ones, mask, samples);
    double dropped = 0, sum = 0;
    for (double v : y) {
      if (v == 0)
        ++dropped;
      else
        EXPECT_DOUBLE_EQ(v, mask.scale());  // 1 / (1 - p), p as a multiple of 2^-16
      sum += v;
    }
    const double n = double(y.size()), sigma = std::sqrt(n * p * (1 - p));
    EXPECT_LT(std::abs(dropped - n * p), 5 * sigma);
    EXPECT_NEAR(sum / n, 1.0, 5 * sigma / n / (1 - p));
    EXPECT_NEAR(mask.scale(), 1 / (1 - p), 1e-4 / (1 - p));
  }
}

TEST(Dropout, SameMaskForAnySplitOfTheBatchOrTheSample) {
  const auto x = random_vector(size_t(kSamples) * kPerSample, 602, 0.5, 1.5);
  const DropoutMask whole = dropout_mask(11, "dropout.split", 7, 0.4, 0, kPerSample);
  const auto all = apply<double>(x, whole, kSamples);
  // Microbatches (or data-parallel shares) of 2 samples: first_sample 0, 2, 4.
  for (int first = 0; first < kSamples; first += 2) {
    const std::vector<double> part(x.begin() + first * kPerSample, x.begin() + (first + 2) * kPerSample);
    const auto got = apply<double>(part, dropout_mask(11, "dropout.split", 7, 0.4, first, kPerSample), 2);
    EXPECT_EQ(got, std::vector<double>(all.begin() + first * kPerSample, all.begin() + (first + 2) * kPerSample));
  }
  // Tensor-parallel slices: elements [20, 50) of every sample.
  std::vector<double> slice, expected;
  for (int b = 0; b < kSamples; ++b)
    for (int64_t e = 20; e < kPerSample; ++e) {
      slice.push_back(x[size_t(b * kPerSample + e)]);
      expected.push_back(all[size_t(b * kPerSample + e)]);
    }
  EXPECT_EQ(apply<double>(slice, dropout_mask(11, "dropout.split", 7, 0.4, 0, kPerSample, 20, 30), kSamples), expected);
  // Another step, site or seed draws another mask.
  for (const DropoutMask& other : {dropout_mask(11, "dropout.split", 8, 0.4, 0, kPerSample),
                                   dropout_mask(11, "dropout.other", 7, 0.4, 0, kPerSample),
                                   dropout_mask(12, "dropout.split", 7, 0.4, 0, kPerSample)})
    EXPECT_NE(apply<double>(x, other, kSamples), all);
}

TEST(Dropout, InPlaceIsTheBackwardAndResidualAddFusesIt) {
  const auto g = random_vector(size_t(kSamples) * kPerSample, 603);
  const auto r = random_vector(g.size(), 604);
  const DropoutMask m = dropout_mask(3, "dropout.residual", 2, 0.2, 1, kPerSample);
  const auto ref = reference_dropout(g, m, kSamples);
  // In place on a gradient: d(loss)/dx = mask(d(loss)/dy) / (1 - p), the forward map itself.
  Vec<double> v = to_view<double>(g);
  dropout_apply<double>(v, v, m, kSamples);
  EXPECT_LT(rel_error(to_host(v), ref), kDoubleTol);
  Vec<double> y("y", g.size());
  dropout_residual_add<double>(y, to_view<double>(r), to_view<double>(g), m, kSamples);
  EXPECT_LT(rel_error(to_host(y), add(ref, r)), kDoubleTol);
}

TEST(Dropout, ZeroRateIsInactive) {
  EXPECT_FALSE(dropout_mask(1, "dropout.none", 1, 0.0, 0, 10).active());
  EXPECT_FALSE(DropoutMask{}.active());
  // Rates are multiples of 2^-16: below half of that, off; 1e-4 drops 7 in 65536.
  EXPECT_FALSE(dropout_mask(1, "dropout.tiny", 1, 1e-6, 0, 10).active());
  EXPECT_EQ(dropout_mask(1, "dropout.some", 1, 1e-4, 0, 10).threshold(), 7u);
  EXPECT_DOUBLE_EQ(dropout_mask(1, "dropout.some", 1, 0.5, 0, 10).scale(), 2.0);
}

}  // namespace
}  // namespace strata
