// Vocabulary-parallel cross-entropy kernels, with the ranks emulated in one process: the vocabulary cut into
// slices (uneven targets: some slices hold none), each slice's partial results combined as the all-reduces would,
// against a long double reference and finite differences, in both row shapes. The MPI tests run the real split.
#include "kernels/vocab_parallel_cross_entropy.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 9, kSlices = 3, kSlice = 7, kVocab = kSlices * kSlice;

// The logits of slice r: columns [r * kSlice, (r + 1) * kSlice) of each row.
std::vector<double> slice_of(const std::vector<double>& logits, int r) {
  std::vector<double> out;
  for (int n = 0; n < kRows; ++n)
    for (int v = 0; v < kSlice; ++v) out.push_back(logits[size_t(n) * kVocab + r * kSlice + v]);
  return out;
}

std::vector<double> reference_losses(const std::vector<double>& logits, const std::vector<int32_t>& targets) {
  std::vector<double> losses(kRows);
  for (int n = 0; n < kRows; ++n) {
    long double mx = logits[size_t(n) * kVocab];
    for (int v = 1; v < kVocab; ++v) mx = std::max<long double>(mx, logits[size_t(n) * kVocab + v]);
    long double sum = 0;
    for (int v = 0; v < kVocab; ++v) sum += std::exp((long double)logits[size_t(n) * kVocab + v] - mx);
    losses[n] = double(mx + std::log(sum) - (long double)logits[size_t(n) * kVocab + targets[n]]);
  }
  return losses;
}

struct Result {
  std::vector<double> losses, dlogits;  // dlogits in the full [N, V] layout
};

// The four forward steps per slice with the combinations in between (max, then sums), then each slice's backward.
template <class T, RowShape S>
Result run(const std::vector<double>& logits, const std::vector<int32_t>& targets, T dloss) {
  std::vector<Vec<T>> slices;
  for (int r = 0; r < kSlices; ++r) slices.push_back(to_view<T>(slice_of(logits, r)));
  Vec<const int32_t> tgt = to_view(targets);
  std::vector<double> mx(kRows, -INFINITY), sum(kRows, 0.0), picked(kRows, 0.0);
  for (int r = 0; r < kSlices; ++r) {
    Vec<T> part("max", kRows);
    vp_row_max<T, S>(part, slices[r], kRows, kSlice);
    const auto p = to_host(part);
    for (int n = 0; n < kRows; ++n) mx[n] = std::max(mx[n], p[n]);
  }
  const Vec<T> mx_view = to_view<T>(mx);
  for (int r = 0; r < kSlices; ++r) {
    Vec<T> part("sum", kRows), pick("picked", kRows);
    vp_row_sum_exp<T, S>(part, slices[r], mx_view, kRows, kSlice);
    vp_target_logit<T>(pick, slices[r], tgt, kRows, kSlice, int64_t(r) * kSlice);
    const auto p = to_host(part), q = to_host(pick);
    for (int n = 0; n < kRows; ++n) sum[n] += p[n], picked[n] += q[n];
  }
  Vec<T> losses("losses", kRows), lse("lse", kRows);
  vp_finish<T>(losses, lse, mx_view, to_view<T>(sum), to_view<T>(picked), kRows);
  Result out{to_host(losses), std::vector<double>(size_t(kRows) * kVocab)};
  for (int r = 0; r < kSlices; ++r) {
    vp_backward<T, S>(slices[r], lse, tgt, kRows, kSlice, int64_t(r) * kSlice, dloss);
    const auto g = to_host(slices[r]);
    for (int n = 0; n < kRows; ++n)
      for (int v = 0; v < kSlice; ++v) out.dlogits[size_t(n) * kVocab + r * kSlice + v] = g[size_t(n) * kSlice + v];
  }
  return out;
}

// Targets in slices 0 and 2 only: slice 1 picks nothing, and must still contribute its exponentials.
std::vector<int32_t> targets_skipping_the_middle_slice() {
  auto t = random_tokens(kRows, kSlice, 611);
  for (int n = 0; n < kRows; ++n) t[n] += n % 2 ? 2 * kSlice : 0;
  return t;
}

TEST(VocabParallelCrossEntropy, SlicesCombineToTheFullLossInBothShapes) {
  const auto targets = targets_skipping_the_middle_slice();
  const auto logits = rounded_to_float(random_vector(size_t(kRows) * kVocab, 612, -3.0, 3.0));
  const auto ref = reference_losses(logits, targets);
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    EXPECT_LT(rel_error(run<float, S>(logits, targets, 1.0f).losses, ref), kFloatTol);
    EXPECT_LT(rel_error(run<double, S>(logits, targets, 1.0).losses, ref), kDoubleTol);
  });
}

TEST(VocabParallelCrossEntropy, BackwardMatchesFiniteDifferencesInBothShapes) {
  const auto targets = targets_skipping_the_middle_slice();
  auto logits = random_vector(size_t(kRows) * kVocab, 613, -3.0, 3.0);
  const double dloss = 1.0 / kRows;
  auto loss = [&] {
    double s = 0;
    for (double l : reference_losses(logits, targets)) s += l;
    return s * dloss;
  };
  const auto fd = finite_difference(logits, loss);
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    EXPECT_LT(rel_error(run<double, S>(logits, targets, dloss).dlogits, fd), kGradTol);
    const auto lf = rounded_to_float(logits);
    EXPECT_LT(rel_error(run<float, S>(lf, targets, 0.25f).dlogits, run<double, S>(lf, targets, 0.25).dlogits),
              kFloatTol);
  });
}

TEST(VocabParallelCrossEntropy, StableForLargeLogits) {
  const auto targets = targets_skipping_the_middle_slice();
  auto logits = random_vector(size_t(kRows) * kVocab, 614, -4.0, 4.0);
  for (auto& v : logits) v += 1e4;  // exp overflows without the global max subtracted
  logits = rounded_to_float(logits);
  const auto ref = reference_losses(logits, targets);
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    const auto got = run<float, S>(logits, targets, 1.0f).losses;
    for (double l : got) ASSERT_TRUE(std::isfinite(l));
    EXPECT_LT(max_abs_diff(got, ref), 2e-3);  // float logits near 1e4 carry ~1e-3 absolute rounding
  });
}

}  // namespace
}  // namespace strata
