// Fused softmax cross-entropy: losses and saved log-sum-exp against a long double reference, the mean,
// the in-place backward against finite differences, and stability for logits around +-1e4 — for both row shapes
// (a thread per row, as on the host; a team per row, as on GPUs).
#include "kernels/cross_entropy.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 7, kVocab = 11;

// log-sum-exp of each row in long double, and loss = lse - logit[target].
struct Reference {
  std::vector<double> losses, lse;
};

Reference reference(const std::vector<double>& logits, const std::vector<int32_t>& targets) {
  Reference r{std::vector<double>(kRows), std::vector<double>(kRows)};
  for (int n = 0; n < kRows; ++n) {
    long double mx = logits[n * kVocab];
    for (int v = 1; v < kVocab; ++v) mx = std::max<long double>(mx, logits[n * kVocab + v]);
    long double sum = 0;
    for (int v = 0; v < kVocab; ++v) sum += std::exp((long double)logits[n * kVocab + v] - mx);
    const long double lse = mx + std::log(sum);
    r.lse[n] = double(lse);
    r.losses[n] = double(lse - (long double)logits[n * kVocab + targets[n]]);
  }
  return r;
}

template <RowShape S>
using Shape = RowShapeTag<S>;

template <class T, RowShape S = kRowShape>
Reference run_forward(const std::vector<double>& logits, const std::vector<int32_t>& targets) {
  Vec<T> losses("losses", kRows), lse("lse", kRows);
  Vec<int32_t> tgt = to_view(targets);
  cross_entropy_forward<T, S>(losses, lse, to_view<T>(logits), tgt, kRows, kVocab);
  return {to_host(losses), to_host(lse)};
}

const std::vector<int32_t> kTargets = random_tokens(kRows, kVocab, 601);

TEST(CrossEntropy, ForwardMatchesReference) {
  const auto logits = rounded_to_float(random_vector(size_t(kRows) * kVocab, 602, -3.0, 3.0));
  const auto ref = reference(logits, kTargets);
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    const auto f = run_forward<float, S>(logits, kTargets), d = run_forward<double, S>(logits, kTargets);
    EXPECT_LT(rel_error(f.losses, ref.losses), kFloatTol);
    EXPECT_LT(rel_error(f.lse, ref.lse), kFloatTol);
    EXPECT_LT(rel_error(d.losses, ref.losses), kDoubleTol);
    EXPECT_LT(rel_error(d.lse, ref.lse), kDoubleTol);
  });
}

TEST(CrossEntropy, MeanLoss) {
  const auto losses = random_vector(kRows, 603, 0.0, 5.0);
  double ref = 0;
  for (double l : losses) ref += l;
  ref /= kRows;
  EXPECT_NEAR(mean_loss<double>(to_view<double>(losses), kRows), ref, 1e-14);
  EXPECT_NEAR(mean_loss<float>(to_view<float>(losses), kRows), ref, 1e-6);
}

TEST(CrossEntropy, BackwardMatchesFiniteDifferences) {
  for_each_row_shape([](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    auto logits = random_vector(size_t(kRows) * kVocab, 604, -3.0, 3.0);
    const double dloss = 1.0 / kRows;  // gradient of the mean
    auto loss = [&] {
      const auto l = run_forward<double, S>(logits, kTargets).losses;
      double s = 0;
      for (double x : l) s += x;
      return s * dloss;
    };
    const auto fd = finite_difference(logits, loss);
    Vec<double> x = to_view<double>(logits), losses("losses", kRows), lse("lse", kRows);
    Vec<int32_t> tgt = to_view(kTargets);
    cross_entropy_forward<double, S>(losses, lse, x, tgt, kRows, kVocab);
    cross_entropy_backward<double, S>(x, lse, tgt, kRows, kVocab, dloss);
    EXPECT_LT(rel_error(to_host(x), fd), kGradTol);

    // Float backward against the double one.
    const auto lf = rounded_to_float(logits);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      Vec<T> y = to_view<T>(lf), l("l", kRows), s("s", kRows);
      cross_entropy_forward<T, S>(l, s, y, tgt, kRows, kVocab);
      cross_entropy_backward<T, S>(y, s, tgt, kRows, kVocab, T(0.25));
      return to_host(y);
    };
    EXPECT_LT(rel_error(run(float{}), run(double{})), kFloatTol);
  });
}

TEST(CrossEntropy, RowShapesAgree) {
  // Same rows, both shapes: the same losses and gradients up to float summation order.
  const int rows = 5, vocab = 1000;
  const auto logits = rounded_to_float(random_vector(size_t(rows) * vocab, 606, -4.0, 4.0));
  const auto targets = random_tokens(rows, vocab, 607);
  auto run = [&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    Vec<float> x = to_view<float>(logits), l("l", rows), s("s", rows);
    Vec<int32_t> tgt = to_view(targets);
    cross_entropy_forward<float, S>(l, s, x, tgt, rows, vocab);
    cross_entropy_backward<float, S>(x, s, tgt, rows, vocab, 0.5f);
    auto out = to_host(l);
    for (double g : to_host(x)) out.push_back(g);
    return out;
  };
  EXPECT_LT(rel_error(run(Shape<RowShape::Team>{}), run(Shape<RowShape::Thread>{})), 1e-6);
}

// Label smoothing e: loss = lse - (1 - e) z[target] - e mean(z), in long double.
std::vector<double> reference_smoothed(const std::vector<double>& logits, const std::vector<int32_t>& targets,
                                       double e) {
  const Reference plain = reference(logits, targets);
  std::vector<double> out(kRows);
  for (int n = 0; n < kRows; ++n) {
    long double mean = 0;
    for (int v = 0; v < kVocab; ++v) mean += logits[n * kVocab + v];
    mean /= kVocab;
    out[n] = double((long double)plain.lse[n] - (1 - e) * (long double)logits[n * kVocab + targets[n]] - e * mean);
  }
  return out;
}

TEST(CrossEntropy, LabelSmoothingLossAndGradientInBothShapes) {
  const double e = 0.2, dloss = 1.0 / kRows;
  auto logits = random_vector(size_t(kRows) * kVocab, 608, -3.0, 3.0);
  const auto ref = reference_smoothed(logits, kTargets, e);
  const auto fd = finite_difference(logits, [&] {
    double total = 0;
    for (double l : reference_smoothed(logits, kTargets, e)) total += l;
    return total * dloss;
  });
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    Vec<double> x = to_view<double>(logits), losses("losses", kRows), lse("lse", kRows);
    Vec<int32_t> tgt = to_view(kTargets);
    cross_entropy_forward<double, S>(losses, lse, x, tgt, kRows, kVocab, e);
    EXPECT_LT(rel_error(to_host(losses), ref), kDoubleTol);
    cross_entropy_backward<double, S>(x, lse, tgt, kRows, kVocab, dloss, e);
    EXPECT_LT(rel_error(to_host(x), fd), kGradTol);
    // Float against the reference on float-representable logits.
    const auto lf = rounded_to_float(logits);
    Vec<float> xf = to_view<float>(lf), lossf("lossf", kRows), lsef("lsef", kRows);
    cross_entropy_forward<float, S>(lossf, lsef, xf, tgt, kRows, kVocab, float(e));
    EXPECT_LT(rel_error(to_host(lossf), reference_smoothed(lf, kTargets, e)), kFloatTol);
  });
}

// Logits around +-1e4: exp overflows (float and double) unless the max is subtracted.
template <class T, RowShape S>
void expect_stable_for_large_logits_shape(double offset, double abs_tol) {
  auto logits = random_vector(size_t(kRows) * kVocab, 605, -5.0, 5.0);
  for (auto& v : logits) v = double(T(v + offset));  // values the kernel sees exactly
  const auto ref = reference(logits, kTargets);
  const auto got = run_forward<T, S>(logits, kTargets);
  for (int n = 0; n < kRows; ++n) {
    ASSERT_TRUE(std::isfinite(got.losses[n])) << "row " << n;
    EXPECT_GE(got.losses[n], 0.0) << "row " << n;
    // lse is ~1e4 in magnitude and rounds to the type's resolution there, hence an absolute tolerance.
    EXPECT_NEAR(got.losses[n], ref.losses[n], abs_tol) << "row " << n;
    EXPECT_NEAR(got.lse[n], ref.lse[n], abs_tol) << "row " << n;
  }
  // Backward: finite, each row of softmax - onehot sums to 0.
  Vec<T> x = to_view<T>(logits), l("l", kRows), s("s", kRows);
  Vec<int32_t> tgt = to_view(kTargets);
  cross_entropy_forward<T, S>(l, s, x, tgt, kRows, kVocab);
  cross_entropy_backward<T, S>(x, s, tgt, kRows, kVocab, T(1));
  const auto g = to_host(x);
  for (int n = 0; n < kRows; ++n) {
    double sum = 0;
    for (int v = 0; v < kVocab; ++v) {
      ASSERT_TRUE(std::isfinite(g[n * kVocab + v]));
      sum += g[n * kVocab + v];
    }
    EXPECT_NEAR(sum, 0.0, 1e3 * abs_tol) << "row " << n;
  }
}

template <class T>
void expect_stable_for_large_logits(double offset, double abs_tol) {
  for_each_row_shape(
      [&](auto shape) { expect_stable_for_large_logits_shape<T, decltype(shape)::value>(offset, abs_tol); });
}

TEST(CrossEntropy, StableForLargePositiveLogitsFloat) { expect_stable_for_large_logits<float>(1e4, 2e-3); }
TEST(CrossEntropy, StableForLargeNegativeLogitsFloat) { expect_stable_for_large_logits<float>(-1e4, 2e-3); }
TEST(CrossEntropy, StableForLargePositiveLogitsDouble) { expect_stable_for_large_logits<double>(1e4, 1e-11); }
TEST(CrossEntropy, StableForLargeNegativeLogitsDouble) { expect_stable_for_large_logits<double>(-1e4, 1e-11); }

}  // namespace
}  // namespace strata
