// L1/L2 penalty and its gradient against float64 loops and finite differences (away from w = 0, where |w| has no
// derivative; at 0 the gradient is the subgradient 0).
#include "kernels/regularization.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr size_t kN = 37;

double reference_penalty(const std::vector<double>& w, double l1, double l2) {
  double total = 0;
  for (double x : w) total += l1 * std::abs(x) + 0.5 * l2 * x * x;
  return total;
}

TEST(Regularization, PenaltyMatchesReference) {
  const auto w = rounded_to_float(random_vector(kN, 901, -2.0, 2.0));
  for (auto [l1, l2] : {std::pair{0.0, 0.1}, std::pair{0.01, 0.0}, std::pair{0.003, 0.2}}) {
    const double ref = reference_penalty(w, l1, l2);
    EXPECT_NEAR(penalty<double>(to_view<double>(w), kN, l1, l2), ref, 1e-14 * std::abs(ref));
    EXPECT_NEAR(penalty<float>(to_view<float>(w), kN, l1, l2), ref, 1e-6 * std::abs(ref));
  }
}

TEST(Regularization, GradientIsThePenaltysDerivativeAddedToTheDataGradient) {
  auto w = random_vector(kN, 902, -2.0, 2.0);
  for (auto& x : w) x += x < 0 ? -0.05 : 0.05;  // keep clear of 0 for the finite differences
  const double l1 = 0.01, l2 = 0.3;
  const auto fd = finite_difference(w, [&] { return reference_penalty(w, l1, l2); });
  const auto g0 = random_vector(kN, 903);
  Vec<double> g = to_view<double>(g0);
  add_penalty_gradient<double>(g, to_view<double>(w), kN, l1, l2);
  EXPECT_LT(rel_error(to_host(g), add(g0, fd)), kGradTol);
  // float against double
  Vec<float> gf = to_view<float>(g0);
  add_penalty_gradient<float>(gf, to_view<float>(w), kN, float(l1), float(l2));
  EXPECT_LT(rel_error(to_host(gf), to_host(g)), kFloatTol);
  // The subgradient at 0 is 0: a zero weight gets no L1 push either way.
  Vec<double> gz("gz", 1), wz("wz", 1);
  add_penalty_gradient<double>(gz, wz, 1, 0.5, 0.5);
  EXPECT_EQ(to_host(gz)[0], 0.0);
}

TEST(Regularization, AnchorPullMatchesReferenceAndFiniteDifferences) {
  // (l2 / 2) sum (w - a)^2 and its gradient l2 (w - a), added to the data gradient.
  auto w = random_vector(40, 811);
  const auto a = random_vector(40, 812), data_grad = random_vector(40, 813);
  const double l2 = 0.3;
  auto loss = [&] {
    double sum = 0;
    for (size_t i = 0; i < w.size(); ++i) sum += 0.5 * l2 * (w[i] - a[i]) * (w[i] - a[i]);
    return sum;
  };
  EXPECT_NEAR(anchor_penalty<double>(to_view<double>(w), to_view<double>(a), w.size(), l2), loss(), 1e-12);
  const auto fd = finite_difference(w, loss);
  Vec<double> g = to_view<double>(data_grad);
  add_anchor_gradient<double>(g, to_view<double>(w), to_view<double>(a), w.size(), l2);
  EXPECT_LT(rel_error(to_host(g), add(fd, data_grad)), kGradTol);
  // At the anchor: no penalty, no gradient.
  EXPECT_EQ(anchor_penalty<double>(to_view<double>(a), to_view<double>(a), a.size(), l2), 0.0);
}

}  // namespace
}  // namespace strata
