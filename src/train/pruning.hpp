#pragma once
// Magnitude pruning (prune.*, docs/training.md): the weights of the selected tensors with the smallest |w| are set to
// zero, a growing fraction on the gradual (cubic) schedule of Zhu & Gupta, and a 0/1 mask keeps them at zero: data
// parallelism multiplies the gradients by it before the norm and the parameters after every optimizer step, and the
// checkpoints store it. Masks only lose entries. The thresholds come from a radix select over every rank's part of
// the tensors (kernels/pruning.hpp), so every layout prunes the same elements.
#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// The target sparsity as a function of the steps done, and the steps at which masks are updated.
struct PruneSchedule {
  double initial = 0, final = 0;
  int64_t start = 0, end = 0, every = 1;
  // 0 before start; initial + (final - initial) (1 - (1 - (t - start) / (end - start))^3) up to end; final after.
  double sparsity_at(int64_t done) const;
  // start, start + every, ... up to end, and end.
  bool updates_at(int64_t done) const;
};
PruneSchedule prune_schedule(const PruneConfig& config, int64_t train_steps);

// Whether prune.tensors selects the tensor: weight matrices and conv kernels (TensorSpec::decay), embeddings only
// with tensors = all.
bool prunable(const TensorSpec& spec, const std::string& tensors);

class Pruner {
 public:
  // params: this rank's buffer. model_tensors: the whole model's tensor list (the one-rank specs, file order): the
  // layer scope's groups and the checkpoint's mask names come from it. counted[i]: whether local tensor i counts
  // on this rank (norm_flags: a replicated tensor on one tp rank, not the tied copy). groups: the host communicators
  // whose ranks hold the model's other parts (tp, pp; null or single-rank ones skipped).
  Pruner(const PruneConfig& config, int64_t train_steps, ParamBuffer<float>& params,
         const std::vector<TensorSpec>& model_tensors, std::vector<char> counted, std::vector<Communicator*> groups);

  bool on() const { return on_; }
  const PruneSchedule& schedule() const { return schedule_; }
  // [params.size()]: 1 keeps an element, 0 prunes it (1 outside the selected tensors).
  const Vec<float>& mask() const { return mask_; }
  // The selected tensors' names (whole-model names, file order): those whose masks checkpoints store.
  const std::vector<std::string>& masked_tensors() const { return masked_names_; }

  // Collective over the groups. After `done` steps: when the schedule updates there, prunes every selected tensor to
  // the scheduled sparsity (elements at or below the threshold |w|) and zeroes the pruned parameters. Returns
  // whether it updated.
  bool maybe_update(int64_t done);
  // Collective: params *= mask (after loading a checkpoint's weights and masks).
  void apply();

  struct Report {
    double target = 0, sparsity = 0;  // over every selected element of the model
    int64_t elements = 0;             // selected elements of the model
    double threshold = -1;            // the global scope's |w| threshold (-1: none or layer scope)
    std::vector<std::pair<std::string, double>> per_tensor;  // each selected tensor's sparsity
  };
  // Collective: the masks' sparsity now (target: the schedule's at `done`).
  Report report(int64_t done);

 private:
  // The radix select: for each group with k[g] > 0, the bits of its k[g]-th smallest |w|.
  std::vector<uint32_t> thresholds(const std::vector<int64_t>& k);
  void sum_over_groups(std::vector<double>& values) const;

  bool on_ = false;
  std::string scope_;
  PruneSchedule schedule_;
  ParamBuffer<float>& params_;
  std::vector<char> counted_;
  std::vector<Communicator*> groups_;
  std::vector<int> local_group_;        // per local tensor: its group (-1: not selected)
  std::vector<int> local_model_index_;  // per local tensor: its index in masked_names_ (-1: not selected)
  std::vector<std::string> masked_names_;
  std::vector<int64_t> group_elements_;   // per group: selected elements of the whole model
  std::vector<int64_t> tensor_elements_;  // per selected tensor (masked_names_)
  double last_threshold_ = -1;
  Vec<float> mask_;
};

}  // namespace strata
