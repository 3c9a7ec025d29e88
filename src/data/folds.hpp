#pragma once
// k-fold cross-validation splits of a dataset's train split (`strata cv`, data.cv_folds / data.cv_fold): which fold
// each sample belongs to, a pure function of (n, k, seed, labels), so every layout, every fold's run and every tool
// computes the same folds.
//   unstratified: the samples in a seeded permutation, dealt to folds 0, 1, ..., k-1, 0, ... in that order;
//   stratified (one label per sample): each class's samples in their own seeded permutation, classes in label order,
//   dealt the same way with one running counter, so every fold holds each class to within one sample and the fold
//   sizes differ by at most one.
#include <cstdint>
#include <vector>

namespace strata::data {

// The fold (0 .. k-1) of each of n samples; `labels` (n entries) stratifies, empty does not. Throws unless 2 <= k <= n.
std::vector<int> assign_folds(int64_t n, int k, uint64_t seed, const std::vector<int32_t>& labels = {});

// The samples (ascending) held out by fold `fold` (in_fold) or trained on while it is held out (!in_fold).
std::vector<int64_t> fold_members(const std::vector<int>& folds, int fold, bool in_fold);

}  // namespace strata::data
