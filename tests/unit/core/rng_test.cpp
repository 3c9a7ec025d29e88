// Counter-based RNG: determinism, independent streams per name and step, and the moments of the
// uniform and normal draws over 1e5 samples (tolerances at 5 sigma or more).
#include "core/rng.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace strata {
namespace {

constexpr int kDraws = 100000;

TEST(Rng, SameKeyAndCounterGiveSameValue) {
  const uint64_t key = rng::make_key(42, "h.0.attn.qkv.weight");
  EXPECT_EQ(key, rng::make_key(42, "h.0.attn.qkv.weight"));  // make_key is a pure function
  for (uint64_t c : {0ull, 1ull, 12345ull, (1ull << 40) + 7}) {
    EXPECT_EQ(rng::bits(key, c), rng::bits(key, c));
    EXPECT_EQ(rng::uniform(key, c), rng::uniform(key, c));
    EXPECT_EQ(rng::normal(key, c), rng::normal(key, c));
  }
  // Order of evaluation does not matter: counter 7 is the same whether or not 0..6 were drawn.
  const double u7 = rng::uniform(key, 7);
  for (uint64_t c = 0; c < 7; ++c) (void)rng::uniform(key, c);
  EXPECT_EQ(rng::uniform(key, 7), u7);
}

TEST(Rng, DifferentNamesGiveDifferentStreams) {
  const uint64_t a = rng::make_key(42, "wte"), b = rng::make_key(42, "wpe"), c = rng::make_key(43, "wte");
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  // The streams share no values over the first 1000 counters and are uncorrelated.
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 1000; ++i) seen.insert(rng::bits(a, i));
  int shared = 0;
  for (uint64_t i = 0; i < 1000; ++i) shared += seen.count(rng::bits(b, i)) + seen.count(rng::bits(c, i));
  EXPECT_EQ(shared, 0);
  double cov = 0;
  for (uint64_t i = 0; i < kDraws; ++i) cov += (rng::uniform(a, i) - 0.5) * (rng::uniform(b, i) - 0.5);
  cov /= kDraws;
  // sd of the mean of a product of two independent U-1/2 is (1/12)/sqrt(n) ~ 2.6e-4.
  EXPECT_LT(std::abs(cov), 2e-3);
}

TEST(Rng, MakeKeyDiffersByStep) {
  std::set<uint64_t> keys;
  for (uint64_t step = 0; step < 100; ++step) keys.insert(rng::make_key(7, "dropout", step));
  EXPECT_EQ(keys.size(), 100u);
  EXPECT_EQ(rng::make_key(7, "dropout"), rng::make_key(7, "dropout", 0));  // default step is 0
  EXPECT_NE(rng::uniform(rng::make_key(7, "dropout", 1), 0), rng::uniform(rng::make_key(7, "dropout", 2), 0));
}

TEST(Rng, UniformMomentsAndRange) {
  const uint64_t key = rng::make_key(1234, "uniform-test");
  double sum = 0, sq = 0;
  int low_bin = 0;
  for (uint64_t i = 0; i < kDraws; ++i) {
    const double u = rng::uniform(key, i);
    ASSERT_GT(u, 0.0) << i;
    ASSERT_LT(u, 1.0) << i;
    sum += u;
    sq += (u - 0.5) * (u - 0.5);
    low_bin += u < 0.1;
  }
  const double mean = sum / kDraws, var = sq / kDraws;
  EXPECT_NEAR(mean, 0.5, 5e-3);                      // sd 9.1e-4
  EXPECT_NEAR(var, 1.0 / 12.0, 2e-3);                // sd 2.4e-4
  EXPECT_NEAR(low_bin / double(kDraws), 0.1, 6e-3);  // sd 9.5e-4
}

TEST(Rng, NormalMomentsAndBoxMuller) {
  const uint64_t key = rng::make_key(99, "normal-test");
  double sum = 0, sq = 0;
  int within_one = 0;
  for (uint64_t i = 0; i < kDraws; ++i) {
    const double z = rng::normal(key, i);
    ASSERT_TRUE(std::isfinite(z)) << i;
    sum += z;
    sq += z * z;
    within_one += std::abs(z) < 1.0;
  }
  const double mean = sum / kDraws, var = sq / kDraws - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.02);                                 // sd 3.2e-3
  EXPECT_NEAR(std::sqrt(var), 1.0, 0.02);                       // sd ~2.2e-3
  EXPECT_NEAR(within_one / double(kDraws), 0.682689492, 0.01);  // sd 1.5e-3
  // normal(i) is Box-Muller from the uniforms at counters 2i and 2i+1.
  for (uint64_t i : {0ull, 5ull, 777ull}) {
    const double u1 = rng::uniform(key, 2 * i), u2 = rng::uniform(key, 2 * i + 1);
    EXPECT_NEAR(rng::normal(key, i), std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2), 1e-12);
  }
}

}  // namespace
}  // namespace strata
