#include "train/ensemble.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace strata {

EnsembleCombine ensemble_combine_named(const std::string& name) {
  if (name == "mean") return EnsembleCombine::Mean;
  if (name == "vote") return EnsembleCombine::Vote;
  STRATA_FAIL("ensemble: --combine {}: expected mean or vote", name);
}

std::vector<float> combine_logits(const std::vector<std::vector<float>>& member_logits, int64_t rows, int classes,
                                  EnsembleCombine how) {
  STRATA_CHECK(!member_logits.empty(), "ensemble: no members");
  const size_t n = size_t(rows) * size_t(classes);
  for (const auto& m : member_logits)
    STRATA_CHECK(m.size() == n, "ensemble: a member gave {} scores, expected {} rows x {} classes", m.size(), rows,
                 classes);
  const double members = double(member_logits.size());
  std::vector<double> mean(static_cast<size_t>(classes)), prob(static_cast<size_t>(classes));
  std::vector<float> out(n);
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(mean.begin(), mean.end(), 0.0);
    std::vector<int> votes(static_cast<size_t>(classes), 0);
    for (const auto& m : member_logits) {
      const float* z = m.data() + size_t(r) * size_t(classes);
      const double top = *std::max_element(z, z + classes);
      double sum = 0;
      for (int c = 0; c < classes; ++c) sum += prob[size_t(c)] = std::exp(double(z[c]) - top);
      for (int c = 0; c < classes; ++c) mean[size_t(c)] += prob[size_t(c)] / sum / members;
      ++votes[size_t(std::max_element(z, z + classes) - z)];  // the member's prediction (first of equal logits)
    }
    float* o = out.data() + size_t(r) * size_t(classes);
    for (int c = 0; c < classes; ++c)
      o[c] = how == EnsembleCombine::Mean ? float(std::log(std::max(mean[size_t(c)], 1e-300)))
                                          : float(votes[size_t(c)] + mean[size_t(c)] * 0.999);
  }
  return out;
}

double mixture_loss(const std::vector<std::vector<double>>& member_target_logp) {
  STRATA_CHECK(!member_target_logp.empty(), "ensemble: no members");
  const size_t rows = member_target_logp.front().size();
  for (const auto& m : member_target_logp)
    STRATA_CHECK(m.size() == rows, "ensemble: members scored {} and {} rows", m.size(), rows);
  STRATA_CHECK(rows > 0, "ensemble: no rows");
  double total = 0;
  for (size_t r = 0; r < rows; ++r) {
    double top = -INFINITY;
    for (const auto& m : member_target_logp) top = std::max(top, m[r]);
    double sum = 0;
    for (const auto& m : member_target_logp) sum += std::exp(m[r] - top);
    total -= top + std::log(sum / double(member_target_logp.size()));
  }
  return total / double(rows);
}

}  // namespace strata
