#include "nn/stage_balance.hpp"

#include <algorithm>
#include <limits>

#include "core/error.hpp"

namespace strata {

std::vector<int> balanced_stage_counts(const std::vector<double>& costs, double last_extra, int stages) {
  const int n = int(costs.size());
  STRATA_CHECK(stages >= 1 && stages <= n, "pipeline: {} stages for {} layers (each stage needs a layer)", stages, n);
  std::vector<double> prefix(size_t(n) + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] + costs[size_t(i)];
  auto range_cost = [&](int a, int b) { return prefix[size_t(b)] - prefix[size_t(a)]; };  // layers [a, b)
  // best[s][i]: the cheapest largest stage for layers [i, n) on stages s .. stages-1 (the last one pays the extra).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(size_t(stages) + 1, std::vector<double>(size_t(n) + 1, inf));
  std::vector<std::vector<int>> cut(size_t(stages), std::vector<int>(size_t(n) + 1, -1));
  best[size_t(stages)][size_t(n)] = 0;
  for (int s = stages - 1; s >= 0; --s) {
    const double extra = s == stages - 1 ? last_extra : 0.0;
    for (int i = n - 1; i >= 0; --i) {
      // Stage s takes layers [i, j); the longest choice among equals is taken (earlier stages fuller).
      for (int j = n; j > i; --j) {
        const double rest = best[size_t(s) + 1][size_t(j)];
        if (rest == inf) continue;
        const double worst = std::max(range_cost(i, j) + extra, rest);
        if (worst < best[size_t(s)][size_t(i)]) {
          best[size_t(s)][size_t(i)] = worst;
          cut[size_t(s)][size_t(i)] = j;
        }
      }
    }
  }
  std::vector<int> counts;
  for (int s = 0, i = 0; s < stages; ++s) {
    const int j = cut[size_t(s)][size_t(i)];
    counts.push_back(j - i);
    i = j;
  }
  return counts;
}

}  // namespace strata
