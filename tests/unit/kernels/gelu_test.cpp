// GELU (tanh approximation): forward against the formula in double, backward (overwriting dx)
// against finite differences.
#include "kernels/gelu.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr size_t kN = 37;

std::vector<double> inputs() {
  auto x = random_vector(kN, 301, -4.0, 4.0);
  x[0] = 0.0;
  x[1] = -9.0;  // deep in the negative tail
  x[2] = 9.0;
  return rounded_to_float(x);
}

double gelu_ref(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

template <class T>
std::vector<double> run_forward(const std::vector<double>& x) {
  Vec<T> y("y", x.size());
  gelu_forward<T>(y, to_view<T>(x), x.size());
  return to_host(y);
}

TEST(Gelu, ForwardMatchesReference) {
  const auto x = inputs();
  std::vector<double> ref(kN);
  for (size_t i = 0; i < kN; ++i) ref[i] = gelu_ref(x[i]);
  EXPECT_LT(rel_error(run_forward<float>(x), ref), kFloatTol);
  EXPECT_LT(rel_error(run_forward<double>(x), ref), kDoubleTol);
  // Known values: gelu(0) = 0, gelu(x) ~ x for large x, ~0 for very negative x.
  const auto y = run_forward<double>(x);
  EXPECT_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.0, 1e-12);
  EXPECT_NEAR(y[2], 9.0, 1e-12);
  // Per element, not only in norm: small outputs must be right too.
  const auto yf = run_forward<float>(x);
  for (size_t i = 0; i < kN; ++i) EXPECT_NEAR(yf[i], ref[i], 1e-6 * (1 + std::abs(ref[i]))) << "x = " << x[i];
}

TEST(Gelu, BackwardMatchesFiniteDifferencesAndOverwrites) {
  auto x = inputs();
  const auto R = random_vector(kN, 302);
  auto loss = [&] { return dot(run_forward<double>(x), R); };
  const auto fd = finite_difference(x, loss);

  Vec<double> dx = to_view<double>(random_vector(kN, 303, 5.0, 6.0));  // garbage: must be overwritten
  gelu_backward<double>(dx, to_view<double>(R), to_view<double>(x), kN);
  EXPECT_LT(rel_error(to_host(dx), fd), kGradTol);

  Vec<float> dxf("dxf", kN);
  gelu_backward<float>(dxf, to_view<float>(rounded_to_float(R)), to_view<float>(x), kN);
  Vec<double> dxd("dxd", kN);
  gelu_backward<double>(dxd, to_view<double>(rounded_to_float(R)), to_view<double>(x), kN);
  EXPECT_LT(rel_error(to_host(dxf), to_host(dxd)), kFloatTol);
}

}  // namespace
}  // namespace strata
