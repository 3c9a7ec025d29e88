// ReLU (kernels/activation.hpp): forward against max(x, 0), float and double, in place too; backward
// (overwriting dx, also with dx aliasing dy) against finite differences; the gradient at exactly 0 is 0.
#include "kernels/activation.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr size_t kN = 41;

std::vector<double> inputs() {
  auto x = random_vector(kN, 801, -2.0, 2.0);
  x[0] = 0.0;
  x[1] = -0.0;
  x[2] = 1e-30;
  x[3] = -1e-30;
  return rounded_to_float(x);
}

template <class T>
std::vector<double> run_forward(const std::vector<double>& x) {
  Vec<T> y = to_view<T>(random_vector(x.size(), 802, 5, 6));  // garbage: overwritten
  relu_forward<T>(y, to_view<T>(x), x.size());
  return to_host(y);
}

TEST(Relu, ForwardMatchesReference) {
  const auto x = inputs();
  std::vector<double> ref(kN);
  for (size_t i = 0; i < kN; ++i) ref[i] = x[i] > 0 ? x[i] : 0.0;
  EXPECT_EQ(run_forward<float>(x), ref);  // exact: a selection
  EXPECT_EQ(run_forward<double>(x), ref);

  Vec<double> inplace = to_view<double>(x);  // y aliasing x
  relu_forward<double>(inplace, inplace, kN);
  EXPECT_EQ(to_host(inplace), ref);
}

TEST(Relu, BackwardMatchesFiniteDifferencesAndOverwrites) {
  // Away from the kink (|x| > 1e-3), where central differences are exact for a piecewise-linear function.
  auto x = random_vector(kN, 803, -2.0, 2.0);
  for (auto& v : x)
    if (std::abs(v) < 1e-3) v = 0.5;
  const auto R = random_vector(kN, 804);
  auto loss = [&] { return dot(run_forward<double>(x), R); };
  const auto fd = finite_difference(x, loss);

  Vec<double> dx = to_view<double>(random_vector(kN, 805, 5, 6));  // garbage: overwritten
  relu_backward<double>(dx, to_view<double>(R), to_view<double>(x), kN);
  EXPECT_LT(rel_error(to_host(dx), fd), kGradTol);

  Vec<double> dy = to_view<double>(R);  // dx aliasing dy
  relu_backward<double>(dy, dy, to_view<double>(x), kN);
  EXPECT_EQ(to_host(dy), to_host(dx));
}

TEST(Relu, GradientAtZeroIsZero) {
  const auto x = inputs();
  const std::vector<double> dy(kN, 3.0);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> dx("dx", kN);
    relu_backward<T>(dx, to_view<T>(dy), to_view<T>(x), kN);
    return to_host(dx);
  };
  for (const auto& dx : {run(float{}), run(double{})}) {
    EXPECT_EQ(dx[0], 0.0);  // x = 0
    EXPECT_EQ(dx[1], 0.0);  // x = -0
    EXPECT_EQ(dx[2], 3.0);  // tiny positive (1e-30 survives rounding to float)
    EXPECT_EQ(dx[3], 0.0);
    for (size_t i = 4; i < kN; ++i) EXPECT_EQ(dx[i], x[i] > 0 ? 3.0 : 0.0) << "x = " << x[i];
  }
}

TEST(Relu, ForwardPropagatesNaN) {
  const auto y = run_forward<float>({std::nan(""), -1.0, 2.0});
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.0);
  EXPECT_EQ(y[2], 2.0);
}

}  // namespace
}  // namespace strata
