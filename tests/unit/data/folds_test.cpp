// k-fold splits (data/folds.hpp): every sample in exactly one fold, fold sizes within one, each class spread evenly
// when stratified, a pure function of (n, k, seed, labels), and bad k refused.
#include "data/folds.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"

namespace strata::data {
namespace {

std::vector<int32_t> skewed_labels(int64_t n) {
  // Class c has about twice as many samples as class c + 1 (a stratified split must still spread each).
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i % 7 < 4 ? 0 : i % 7 < 6 ? 1 : 2);
  return labels;
}

TEST(Folds, PartitionWithSizesWithinOne) {
  for (int k : {2, 3, 5, 10}) {
    for (bool stratified : {false, true}) {
      const int64_t n = 103;
      const auto folds = assign_folds(n, k, 7, stratified ? skewed_labels(n) : std::vector<int32_t>{});
      ASSERT_EQ(folds.size(), size_t(n));
      std::vector<int64_t> size(size_t(k), 0);
      for (int f : folds) {
        ASSERT_GE(f, 0);
        ASSERT_LT(f, k);
        ++size[size_t(f)];
      }
      EXPECT_LE(*std::max_element(size.begin(), size.end()) - *std::min_element(size.begin(), size.end()), 1)
          << "k = " << k << (stratified ? " stratified" : "");
      // fold_members: the held-out fold and the rest cover every sample once.
      for (int f = 0; f < k; ++f) {
        auto in = fold_members(folds, f, true), out = fold_members(folds, f, false);
        EXPECT_EQ(int64_t(in.size()), size[size_t(f)]);
        EXPECT_EQ(in.size() + out.size(), size_t(n));
        std::vector<int64_t> all;
        std::merge(in.begin(), in.end(), out.begin(), out.end(), std::back_inserter(all));
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(all[size_t(i)], i);
      }
    }
  }
}

TEST(Folds, StratifiedSpreadsEveryClassEvenly) {
  const int64_t n = 211;
  const int k = 5;
  const auto labels = skewed_labels(n);
  const auto folds = assign_folds(n, k, 3, labels);
  std::map<int32_t, std::vector<int>> per_class;  // class -> count per fold
  for (int64_t i = 0; i < n; ++i) {
    auto& counts = per_class[labels[size_t(i)]];
    counts.resize(size_t(k));
    ++counts[size_t(folds[size_t(i)])];
  }
  for (const auto& [label, counts] : per_class)
    EXPECT_LE(*std::max_element(counts.begin(), counts.end()) - *std::min_element(counts.begin(), counts.end()), 1)
        << "class " << label;
  // Unstratified, the rare class is spread unevenly for this seed: stratification does something.
  const auto plain = assign_folds(n, k, 3);
  std::vector<int> rare(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i)
    if (labels[size_t(i)] == 2) ++rare[size_t(plain[size_t(i)])];
  EXPECT_GT(*std::max_element(rare.begin(), rare.end()) - *std::min_element(rare.begin(), rare.end()), 1);
}

TEST(Folds, PureFunctionOfSeedAndK) {
  const auto labels = skewed_labels(50);
  EXPECT_EQ(assign_folds(50, 4, 9, labels), assign_folds(50, 4, 9, labels));
  EXPECT_EQ(assign_folds(50, 4, 9), assign_folds(50, 4, 9));
  EXPECT_NE(assign_folds(50, 4, 9), assign_folds(50, 4, 10));
  EXPECT_NE(assign_folds(50, 4, 9, labels), assign_folds(50, 4, 10, labels));
  // Shuffled, not dealt in index order.
  const auto folds = assign_folds(50, 4, 9);
  int in_order = 0;
  for (int i = 0; i < 50; ++i) in_order += folds[size_t(i)] == i % 4;
  EXPECT_LT(in_order, 30);
}

TEST(Folds, RejectsBadK) {
  EXPECT_THROW(assign_folds(10, 1, 0), Error);
  EXPECT_THROW(assign_folds(10, 0, 0), Error);
  EXPECT_THROW(assign_folds(3, 4, 0), Error);
  EXPECT_THROW(assign_folds(10, 2, 0, std::vector<int32_t>(9, 0)), Error);
  EXPECT_NO_THROW(assign_folds(4, 4, 0));
}

}  // namespace
}  // namespace strata::data
