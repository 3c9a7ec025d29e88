// Pipeline stage boundaries for layer chains (nn/stage_balance.hpp): the most expensive stage is as cheap as any
// contiguous split allows, ties put layers on earlier stages, every stage holds a layer.
#include "nn/stage_balance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "core/error.hpp"

namespace strata {
namespace {

double largest_stage(const std::vector<double>& costs, double extra, const std::vector<int>& counts) {
  double worst = 0;
  size_t at = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    double sum = s + 1 == counts.size() ? extra : 0.0;
    for (int k = 0; k < counts[s]; ++k) sum += costs[at++];
    worst = std::max(worst, sum);
  }
  return worst;
}

// The cheapest largest stage over every composition of n layers into `stages` non-empty parts.
double best_possible(const std::vector<double>& costs, double extra, int stages) {
  double best = 1e300;
  std::vector<int> counts;
  std::function<void(int, int)> walk = [&](int left, int parts) {
    if (parts == 1) {
      counts.push_back(left);
      best = std::min(best, largest_stage(costs, extra, counts));
      counts.pop_back();
      return;
    }
    for (int k = 1; k <= left - parts + 1; ++k) {
      counts.push_back(k);
      walk(left - k, parts - 1);
      counts.pop_back();
    }
  };
  walk(int(costs.size()), stages);
  return best;
}

TEST(StageBalance, IsOptimalForEverySplitOfSmallChains) {
  const std::vector<std::vector<double>> chains = {{1, 1, 1, 1}, {5, 1, 1, 1, 1}, {1, 2, 3, 4, 5, 6},
                                                   {9, 1, 1, 9}, {3, 3, 3},       {0.5, 7, 2, 2, 2, 2, 1}};
  for (const auto& costs : chains)
    for (double extra : {0.0, 1.0, 4.0, 20.0})
      for (int stages = 1; stages <= int(costs.size()); ++stages) {
        const auto counts = balanced_stage_counts(costs, extra, stages);
        ASSERT_EQ(int(counts.size()), stages);
        int total = 0;
        for (int c : counts) {
          EXPECT_GE(c, 1);
          total += c;
        }
        EXPECT_EQ(total, int(costs.size()));
        EXPECT_DOUBLE_EQ(largest_stage(costs, extra, counts), best_possible(costs, extra, stages))
            << "chain of " << costs.size() << ", extra " << extra << ", stages " << stages;
      }
}

TEST(StageBalance, KnownSplits) {
  EXPECT_EQ(balanced_stage_counts({1, 1, 1, 1}, 0, 2), (std::vector<int>{2, 2}));
  EXPECT_EQ(balanced_stage_counts({1, 1, 1}, 0, 2), (std::vector<int>{2, 1}));     // ties: earlier stages fuller
  EXPECT_EQ(balanced_stage_counts({1, 1, 1, 1}, 2, 2), (std::vector<int>{3, 1}));  // the head weighs on the last
  EXPECT_EQ(balanced_stage_counts({4, 1, 1}, 0, 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(balanced_stage_counts({2, 2}, 0, 1), (std::vector<int>{2}));
}

TEST(StageBalance, MoreStagesThanLayersIsAnError) {
  EXPECT_THROW(balanced_stage_counts({1, 1}, 0, 3), Error);
  EXPECT_THROW(balanced_stage_counts({1, 1}, 0, 0), Error);
}

}  // namespace
}  // namespace strata
