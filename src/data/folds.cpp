#include "data/folds.hpp"

#include <map>

#include "core/error.hpp"
#include "data/batch_sampler.hpp"

namespace strata::data {

namespace {
// The permutation stream of the fold assignment (distinct from the epochs' shuffles of the batch sampler).
constexpr uint64_t kFoldStream = 0xC0FFEE0F01D5ull;
}  // namespace

std::vector<int> assign_folds(int64_t n, int k, uint64_t seed, const std::vector<int32_t>& labels) {
  STRATA_CHECK(k >= 2, "cross-validation needs at least 2 folds, got {}", k);
  STRATA_CHECK(int64_t(k) <= n, "{} folds of {} samples: every fold needs at least one sample", k, n);
  STRATA_CHECK(labels.empty() || int64_t(labels.size()) == n, "{} labels for {} samples", labels.size(), n);
  std::vector<int> folds(size_t(n), -1);
  int64_t dealt = 0;
  auto deal = [&](const std::vector<int64_t>& members, uint64_t stream) {
    const auto order = seeded_permutation(int64_t(members.size()), seed, kFoldStream ^ stream);
    for (int64_t i : order) folds[size_t(members[size_t(i)])] = int(dealt++ % k);
  };
  if (labels.empty()) {
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
    deal(all, 0);
    return folds;
  }
  std::map<int32_t, std::vector<int64_t>> by_class;  // label order
  for (int64_t i = 0; i < n; ++i) by_class[labels[size_t(i)]].push_back(i);
  for (const auto& [label, members] : by_class) deal(members, uint64_t(int64_t(label)) + 1);
  return folds;
}

std::vector<int64_t> fold_members(const std::vector<int>& folds, int fold, bool in_fold) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < folds.size(); ++i)
    if ((folds[i] == fold) == in_fold) out.push_back(int64_t(i));
  return out;
}

}  // namespace strata::data
