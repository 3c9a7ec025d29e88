#include "train/pruning.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "core/error.hpp"
#include "kernels/pruning.hpp"

namespace strata {

double PruneSchedule::sparsity_at(int64_t done) const {
  if (final <= 0 || done < start) return 0;
  if (done >= end) return final;
  const double remaining = 1.0 - double(done - start) / double(end - start);
  return final + (initial - final) * remaining * remaining * remaining;
}

bool PruneSchedule::updates_at(int64_t done) const {
  if (final <= 0 || done < start || done > end) return false;
  return done == end || (done - start) % every == 0;
}

PruneSchedule prune_schedule(const PruneConfig& config, int64_t train_steps) {
  return {config.initial_sparsity, config.sparsity, config.start_step, config.end_for(train_steps), config.every};
}

bool prunable(const TensorSpec& spec, const std::string& tensors) {
  return spec.decay && (tensors == "all" || !spec.embedding);
}

Pruner::Pruner(const PruneConfig& config, int64_t train_steps, ParamBuffer<float>& params,
               const std::vector<TensorSpec>& model_tensors, std::vector<char> counted,
               std::vector<Communicator*> groups)
    : on_(config.on()),
      scope_(config.scope),
      schedule_(prune_schedule(config, train_steps)),
      params_(params),
      counted_(std::move(counted)) {
  if (!on_) return;
  for (auto* g : groups)
    if (g && g->size() > 1) groups_.push_back(g);
  const auto& specs = params.specs();
  if (counted_.empty()) counted_.assign(specs.size(), 1);
  STRATA_CHECK(counted_.size() == specs.size(), "pruning: {} count flags for {} tensors", counted_.size(),
               specs.size());
  std::map<std::string, int> model_index;
  for (const auto& t : model_tensors) {
    if (!prunable(t, config.tensors)) continue;
    model_index[t.name] = int(masked_names_.size());
    masked_names_.push_back(t.name);
    tensor_elements_.push_back(t.global_numel());
    if (scope_ == "layer" || group_elements_.empty()) group_elements_.push_back(0);
    group_elements_.back() += t.global_numel();
  }
  STRATA_CHECK(!masked_names_.empty(), "prune.tensors = '{}' selects no tensor of this model", config.tensors);
  for (const auto& s : specs) {
    const auto it = prunable(s, config.tensors) ? model_index.find(s.name) : model_index.end();
    const int index = it == model_index.end() ? -1 : it->second;
    local_model_index_.push_back(index);
    local_group_.push_back(index < 0 ? -1 : (scope_ == "layer" ? index : 0));
  }
  mask_ = Vec<float>("strata::prune::mask", params.size());
  Kokkos::deep_copy(mask_, 1.0f);
}

void Pruner::sum_over_groups(std::vector<double>& values) const {
  for (auto* g : groups_) g->all_reduce_sum(values.data(), values.size());
}

std::vector<uint32_t> Pruner::thresholds(const std::vector<int64_t>& k) {
  const size_t n_groups = group_elements_.size();
  std::vector<uint32_t> prefix(n_groups, 0);
  std::vector<int64_t> remaining = k;
  Kokkos::View<int64_t*, MemSpace> hist("strata::prune::hist", n_groups * 256);
  const auto& specs = params_.specs();
  for (int pass = 0; pass < 4; ++pass) {
    Kokkos::deep_copy(hist, int64_t(0));
    for (size_t i = 0; i < specs.size(); ++i) {
      const int g = local_group_[i];
      if (g < 0 || !counted_[i] || remaining[size_t(g)] <= 0) continue;
      const auto bins = Kokkos::subview(hist, std::make_pair(size_t(g) * 256, size_t(g + 1) * 256));
      magnitude_digit_histogram(params_.param(int(i)), size_t(specs[i].numel()), prefix[size_t(g)], pass, bins);
    }
    const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), hist);
    std::vector<double> counts(host.data(), host.data() + host.extent(0));  // exact below 2^53 elements
    sum_over_groups(counts);
    for (size_t g = 0; g < n_groups; ++g) {
      if (remaining[g] <= 0) continue;
      // The digit whose bin holds the remaining-th smallest element, and how many lie in the bins below it.
      int64_t below = 0;
      int digit = 0;
      for (; digit < 255; ++digit) {
        const auto c = int64_t(counts[g * 256 + size_t(digit)]);
        if (below + c >= remaining[g]) break;
        below += c;
      }
      remaining[g] -= below;
      prefix[g] = (prefix[g] << 8) | uint32_t(digit);
    }
  }
  return prefix;
}

bool Pruner::maybe_update(int64_t done) {
  if (!on_ || !schedule_.updates_at(done)) return false;
  const double target = schedule_.sparsity_at(done);
  std::vector<int64_t> k;
  for (int64_t n : group_elements_) k.push_back(std::llround(target * double(n)));
  const std::vector<uint32_t> t = thresholds(k);
  const auto& specs = params_.specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const int g = local_group_[i];
    if (g < 0 || k[size_t(g)] <= 0) continue;
    const size_t n = size_t(specs[i].numel());
    prune_at_or_below(view_of(mask_.data() + specs[i].offset, n), params_.param(int(i)), n, t[size_t(g)]);
  }
  if (scope_ == "global" && k[0] > 0) {
    uint32_t bits = t[0];
    float value;
    std::memcpy(&value, &bits, sizeof value);
    last_threshold_ = value;
  }
  apply();
  return true;
}

void Pruner::apply() {
  if (on_) apply_mask<float>(params_.params(), mask_, params_.size());
}

Pruner::Report Pruner::report(int64_t done) {
  Report r;
  r.target = schedule_.sparsity_at(done);
  r.threshold = last_threshold_;
  std::vector<double> zeros(masked_names_.size(), 0.0);
  const auto& specs = params_.specs();
  for (size_t i = 0; i < specs.size(); ++i)
    if (local_model_index_[i] >= 0 && counted_[i])
      zeros[size_t(local_model_index_[i])] += double(
          count_pruned(view_of(mask_.data() + specs[i].offset, size_t(specs[i].numel())), size_t(specs[i].numel())));
  sum_over_groups(zeros);
  double all_zeros = 0;
  for (size_t m = 0; m < masked_names_.size(); ++m) {
    all_zeros += zeros[m];
    r.elements += tensor_elements_[m];
    r.per_tensor.emplace_back(masked_names_[m], zeros[m] / double(tensor_elements_[m]));
  }
  r.sparsity = all_zeros / double(r.elements);
  return r;
}

}  // namespace strata
