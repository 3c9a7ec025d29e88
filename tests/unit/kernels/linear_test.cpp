// Linear layer (src/nn/linear.hpp; y = x W^T + b, W [out, in]): forward with and without the fused
// residual against a double reference; backward dx (overwrite or accumulate), dW and db (accumulate)
// against finite differences.
#include "nn/linear.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 7, kIn = 13, kOut = 5;

struct LinearData {
  std::vector<double> x = rounded_to_float(random_vector(size_t(kRows) * kIn, 1001));
  std::vector<double> w = rounded_to_float(random_vector(size_t(kOut) * kIn, 1002));
  std::vector<double> b = rounded_to_float(random_vector(kOut, 1003));
  std::vector<double> r = rounded_to_float(random_vector(size_t(kRows) * kOut, 1004));
};

std::vector<double> reference_forward(const LinearData& d, bool with_residual) {
  std::vector<double> y(size_t(kRows) * kOut);
  for (int n = 0; n < kRows; ++n)
    for (int o = 0; o < kOut; ++o) {
      double s = d.b[o] + (with_residual ? d.r[n * kOut + o] : 0.0);
      for (int i = 0; i < kIn; ++i) s += d.x[n * kIn + i] * d.w[o * kIn + i];
      y[n * kOut + o] = s;
    }
  return y;
}

template <class T>
std::vector<double> run_forward(const LinearData& d, bool with_residual) {
  Vec<T> y = to_view<T>(random_vector(size_t(kRows) * kOut, 1005));  // garbage: overwritten
  Vec<T> r = to_view<T>(d.r);
  linear_forward<T>(y, to_view<T>(d.x), to_view<T>(d.w), to_view<T>(d.b), kRows, kIn, kOut,
                    with_residual ? &r : nullptr);
  return to_host(y);
}

TEST(Linear, ForwardMatchesReference) {
  LinearData d;
  for (bool res : {false, true}) {
    const auto ref = reference_forward(d, res);
    EXPECT_LT(rel_error(run_forward<float>(d, res), ref), kFloatTol) << "residual " << res;
    EXPECT_LT(rel_error(run_forward<double>(d, res), ref), kDoubleTol) << "residual " << res;
  }
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  LinearData d;
  const auto R = random_vector(size_t(kRows) * kOut, 1006);
  auto loss = [&] { return dot(run_forward<double>(d, true), R); };
  const auto fd_x = finite_difference(d.x, loss);
  const auto fd_w = finite_difference(d.w, loss);
  const auto fd_b = finite_difference(d.b, loss);
  const auto fd_r = finite_difference(d.r, loss);
  EXPECT_LT(rel_error(R, fd_r), kGradTol);  // the fused residual passes dy through unchanged

  const auto g0_x = random_vector(d.x.size(), 1007);
  const auto g0_w = random_vector(d.w.size(), 1008);
  const auto g0_b = random_vector(d.b.size(), 1009);
  for (bool accumulate_dx : {false, true}) {
    Vec<double> dx = to_view<double>(g0_x), dw = to_view<double>(g0_w), db = to_view<double>(g0_b);
    linear_backward<double>(dx, dw, db, to_view<double>(R), to_view<double>(d.x), to_view<double>(d.w), kRows, kIn,
                            kOut, accumulate_dx);
    EXPECT_LT(rel_error(to_host(dx), accumulate_dx ? add(g0_x, fd_x) : fd_x), kGradTol) << "acc " << accumulate_dx;
    EXPECT_LT(rel_error(to_host(dw), add(g0_w, fd_w)), kGradTol) << "acc " << accumulate_dx;
    EXPECT_LT(rel_error(to_host(db), add(g0_b, fd_b)), kGradTol) << "acc " << accumulate_dx;
  }
}

TEST(Linear, BackwardFloatMatchesDouble) {
  LinearData d;
  const auto R = rounded_to_float(random_vector(size_t(kRows) * kOut, 1010));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> dx("dx", d.x.size()), dw("dw", d.w.size()), db("db", d.b.size());
    linear_backward<T>(dx, dw, db, to_view<T>(R), to_view<T>(d.x), to_view<T>(d.w), kRows, kIn, kOut);
    return std::vector<std::vector<double>>{to_host(dx), to_host(dw), to_host(db)};
  };
  const auto f = run(float{}), r = run(double{});
  for (int i = 0; i < 3; ++i) EXPECT_LT(rel_error(f[i], r[i]), kFloatTol) << "gradient " << i;
}

}  // namespace
}  // namespace strata
