// Gradient-norm clipping with torch.nn.utils.clip_grad_norm_ semantics:
// coef = max_norm / (norm + 1e-6), applied only when coef < 1; the norm before clipping is returned.
#include "kernels/grad_norm.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr size_t kN = 101;

double reference_norm(const std::vector<double>& g) {
  long double s = 0;
  for (double x : g) s += (long double)x * x;
  return double(std::sqrt(s));
}

TEST(GradNorm, SumOfSquaresMatchesReference) {
  const auto g = rounded_to_float(random_vector(kN, 801, -3.0, 3.0));
  const double ref = reference_norm(g) * reference_norm(g);
  EXPECT_NEAR(sum_of_squares<double>(to_view<double>(g), kN), ref, 1e-12 * ref);
  // Float gradients are accumulated in double: as exact as the double path.
  EXPECT_NEAR(sum_of_squares<float>(to_view<float>(g), kN), ref, 1e-12 * ref);
}

TEST(GradNorm, ScaleInPlace) {
  const auto g = random_vector(kN, 802);
  Vec<double> v = to_view<double>(g);
  scale_in_place<double>(v, kN, 0.375);
  const auto got = to_host(v);
  for (size_t i = 0; i < kN; ++i) EXPECT_EQ(got[i], g[i] * 0.375) << i;
}

template <class T>
void expect_clips_to_max_norm(double tol) {
  const auto g = rounded_to_float(random_vector(kN, 803, -3.0, 3.0));
  const double norm = reference_norm(g), max_norm = 0.5;
  ASSERT_GT(norm, 1.0);
  Vec<T> v = to_view<T>(g);
  const double returned = clip_grad_norm<T>(v, kN, max_norm);
  EXPECT_NEAR(returned, norm, 1e-12 * norm);  // the norm before clipping
  const auto got = to_host(v);
  const double coef = max_norm / (norm + 1e-6);
  std::vector<double> expected(kN);
  for (size_t i = 0; i < kN; ++i) expected[i] = g[i] * coef;
  EXPECT_LT(rel_error(got, expected), tol);
  // After clipping the norm is max_norm (up to torch's 1e-6 in the denominator, relative 1e-6 / norm).
  EXPECT_NEAR(reference_norm(got), max_norm, max_norm * (1e-6 / norm + 2 * tol));
}

TEST(GradNorm, ClipsToMaxNormFloat) { expect_clips_to_max_norm<float>(kFloatTol); }
TEST(GradNorm, ClipsToMaxNormDouble) { expect_clips_to_max_norm<double>(kDoubleTol); }

TEST(GradNorm, NoScalingBelowMaxNormOrWhenDisabled) {
  const auto g = random_vector(kN, 804, -0.01, 0.01);
  const double norm = reference_norm(g);
  for (double max_norm : {10.0 * norm, 0.0, -1.0}) {
    Vec<double> v = to_view<double>(g);
    const double returned = clip_grad_norm<double>(v, kN, max_norm);
    EXPECT_NEAR(returned, norm, 1e-12 * norm) << "max_norm " << max_norm;
    const auto got = to_host(v);
    for (size_t i = 0; i < kN; ++i) ASSERT_EQ(got[i], g[i]) << "max_norm " << max_norm << " element " << i;
  }
}

}  // namespace
}  // namespace strata
