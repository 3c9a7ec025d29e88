// LayerNorm: forward (y, saved mean and rstd) against a double reference; backward dx, dw, db
// (all accumulating) against finite differences.
#include "kernels/layernorm.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 70, kChannels = 13;  // rows: 3 chunks of the GPU shape's parameter reduction

struct LayerNormData {
  // Rows with a nonzero mean and different spreads, so that mean and rstd both matter.
  std::vector<double> x = rounded_to_float(random_vector(size_t(kRows) * kChannels, 201, -1.5, 2.5));
  std::vector<double> w = rounded_to_float(random_vector(kChannels, 202, 0.5, 1.5));
  std::vector<double> b = rounded_to_float(random_vector(kChannels, 203));
};

struct Reference {
  std::vector<double> y, mean, rstd;
};

Reference reference_forward(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b) {
  Reference r{std::vector<double>(x.size()), std::vector<double>(kRows), std::vector<double>(kRows)};
  for (int n = 0; n < kRows; ++n) {
    const double* row = &x[n * kChannels];
    double m = 0;
    for (int c = 0; c < kChannels; ++c) m += row[c];
    m /= kChannels;
    double var = 0;  // biased variance, as torch.nn.LayerNorm
    for (int c = 0; c < kChannels; ++c) var += (row[c] - m) * (row[c] - m);
    var /= kChannels;
    const double rstd = 1.0 / std::sqrt(var + 1e-5);
    for (int c = 0; c < kChannels; ++c) r.y[n * kChannels + c] = (row[c] - m) * rstd * w[c] + b[c];
    r.mean[n] = m;
    r.rstd[n] = rstd;
  }
  return r;
}

template <class T, RowShape S = kRowShape>
Reference run_forward(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b) {
  Vec<T> y("y", x.size()), mean("mean", kRows), rstd("rstd", kRows);
  layernorm_forward<T, S>(y, mean, rstd, to_view<T>(x), to_view<T>(w), to_view<T>(b), kRows, kChannels);
  return {to_host(y), to_host(mean), to_host(rstd)};
}

template <class T>
void expect_forward_matches(double tol) {
  LayerNormData d;
  const Reference ref = reference_forward(d.x, d.w, d.b);
  for_each_row_shape([&](auto shape) {
    const Reference got = run_forward<T, decltype(shape)::value>(d.x, d.w, d.b);
    EXPECT_LT(rel_error(got.y, ref.y), tol);
    EXPECT_LT(rel_error(got.mean, ref.mean), tol);
    EXPECT_LT(rel_error(got.rstd, ref.rstd), tol);
  });
}

TEST(LayerNorm, ForwardMatchesReferenceFloat) { expect_forward_matches<float>(kFloatTol); }
TEST(LayerNorm, ForwardMatchesReferenceDouble) { expect_forward_matches<double>(kDoubleTol); }

TEST(LayerNorm, OutputRowsAreNormalisedWithUnitWeights) {
  LayerNormData d;
  const std::vector<double> ones(kChannels, 1.0), zeros(kChannels, 0.0);
  const auto y = run_forward<double>(d.x, ones, zeros).y;
  for (int n = 0; n < kRows; ++n) {
    double m = 0, sq = 0;
    for (int c = 0; c < kChannels; ++c) m += y[n * kChannels + c];
    for (int c = 0; c < kChannels; ++c) sq += y[n * kChannels + c] * y[n * kChannels + c];
    EXPECT_NEAR(m / kChannels, 0.0, 1e-12) << "row " << n;
    EXPECT_GT(sq / kChannels, 0.99) << "row " << n;  // var / (var + eps), eps = 1e-5
    EXPECT_LT(sq / kChannels, 1.0) << "row " << n;
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferencesAndAccumulates) {
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    LayerNormData d;
    const auto R = random_vector(d.x.size(), 204);
    auto loss = [&] { return dot(run_forward<double, S>(d.x, d.w, d.b).y, R); };
    const auto fd_x = finite_difference(d.x, loss);
    const auto fd_w = finite_difference(d.w, loss);
    const auto fd_b = finite_difference(d.b, loss);

    const auto g0_x = random_vector(d.x.size(), 205);
    const auto g0_w = random_vector(d.w.size(), 206);
    const auto g0_b = random_vector(d.b.size(), 207);
    Vec<double> x = to_view<double>(d.x), w = to_view<double>(d.w), b = to_view<double>(d.b);
    Vec<double> y("y", d.x.size()), mean("mean", kRows), rstd("rstd", kRows);
    layernorm_forward<double, S>(y, mean, rstd, x, w, b, kRows, kChannels);
    Vec<double> dx = to_view<double>(g0_x), dw = to_view<double>(g0_w), db = to_view<double>(g0_b);
    layernorm_backward<double, S>(dx, dw, db, to_view<double>(R), x, w, mean, rstd, kRows, kChannels);

    EXPECT_LT(rel_error(to_host(dx), add(g0_x, fd_x)), kGradTol);
    EXPECT_LT(rel_error(to_host(dw), add(g0_w, fd_w)), kGradTol);
    EXPECT_LT(rel_error(to_host(db), add(g0_b, fd_b)), kGradTol);
    // The accumulated part alone must also match (the g0 offset must not mask a small error).
    auto minus = [](std::vector<double> a, const std::vector<double>& b) {
      for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
      return a;
    };
    EXPECT_LT(rel_error(minus(to_host(dx), g0_x), fd_x), kGradTol);
    EXPECT_LT(rel_error(minus(to_host(dw), g0_w), fd_w), kGradTol);
    EXPECT_LT(rel_error(minus(to_host(db), g0_b), fd_b), kGradTol);
  });
}

TEST(LayerNorm, BackwardFloatMatchesDouble) {
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    LayerNormData d;
    const auto R = rounded_to_float(random_vector(d.x.size(), 208));
    auto run = [&](auto tag) {
      using T = decltype(tag);
      Vec<T> x = to_view<T>(d.x), w = to_view<T>(d.w), b = to_view<T>(d.b);
      Vec<T> y("y", d.x.size()), mean("mean", kRows), rstd("rstd", kRows);
      layernorm_forward<T, S>(y, mean, rstd, x, w, b, kRows, kChannels);
      Vec<T> dx("dx", d.x.size()), dw("dw", kChannels), db("db", kChannels);
      layernorm_backward<T, S>(dx, dw, db, to_view<T>(R), x, w, mean, rstd, kRows, kChannels);
      return std::vector<std::vector<double>>{to_host(dx), to_host(dw), to_host(db)};
    };
    const auto f = run(float{}), r = run(double{});
    for (int i = 0; i < 3; ++i) EXPECT_LT(rel_error(f[i], r[i]), kFloatTol) << "gradient " << i;
  });
}

}  // namespace
}  // namespace strata
