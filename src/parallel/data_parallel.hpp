#pragma once
// Data parallelism (DESIGN.md principle 8). Each dp rank runs forward/backward on its slice of the global
// batch; gradients are summed over the dp group in buckets — slices of the contiguous gradient buffer —
// each launched (non-blocking) as soon as backward has completed it, so communication overlaps the rest of
// backward. With ZeRO-1 the buckets are reduce-scattered instead (each rank receiving the part of a bucket in
// its shard), also during backward; each rank updates its shard of the parameters with its shard of the AdamW
// state, and the parameters are all-gathered.
#include <memory>
#include <vector>

#include "comm/communicator.hpp"
#include "core/config.hpp"
#include "nn/model.hpp"
#include "nn/param_buffer.hpp"
#include "optim/adamw.hpp"

namespace strata {

// Which tensors count in the gradient norm on this rank: each element of the model once, so not a tensor
// replicated over tp on tp ranks other than 0, nor the last stage's copy of a tied tensor.
std::vector<char> norm_flags(const std::vector<TensorSpec>& specs, int tp_rank);

template <class T>
class DataParallel {
 public:
  // params must be padded to a multiple of dp.size() when ZeRO-1 is on (ParamBuffer's pad_multiple).
  // norm_groups: the other groups (tensor- and pipeline-parallel; null entries skipped) whose ranks hold
  // other parts of the model: the gradient norm sums over them. in_norm[i]: whether tensor i counts on this
  // rank (false for a copy that another rank of those groups counts: a tensor replicated over tp on tp ranks
  // other than 0, the last stage's copy of the tied embedding). Empty: every tensor counts.
  // dp carries the device buffers (gradient buckets, ZeRO-1 shards), dp_host the same ranks' host scalars; the
  // norm groups carry host scalars.
  DataParallel(Communicator& dp, Communicator& dp_host, std::vector<Communicator*> norm_groups,
               std::vector<char> in_norm, ParamBuffer<T>& params, const TrainConfig& train,
               const ParallelConfig& parallel);

  // Pass to the last microbatch's backward: launches each bucket as backward completes it.
  GradReadyHook ready_hook();
  // After the last backward: completes the reduction, adds the L1/L2 penalty's gradient (train.l1, train.l2),
  // clips to max_norm (0: off) by the global norm, updates the parameters. Returns the gradient norm before
  // clipping (the same on every rank). The same as reduce_gradients() then apply_update().
  double finish_step(double lr, double max_norm);
  // The two halves of finish_step, for a caller that decides between them (the step guard, train/step_guard.hpp):
  // completes the reduction, masks, adds the penalty's gradient and returns the global gradient norm (the same on
  // every rank); the parameters are unchanged until apply_update. Not calling apply_update skips the step: the
  // parameters, AdamW's moments and its step counter stay as they were.
  double reduce_gradients();
  // Clips to max_norm (0: off) by the norm reduce_gradients returned and updates the parameters. Collective
  // (ZeRO-1 all-gathers the parameters).
  void apply_update(double lr, double max_norm);
  // The penalty l1 sum|w| + (l2/2) sum w^2 over the regularized tensors at the last step's start (the same on every
  // rank; 0 without regularization).
  double last_penalty() const { return last_penalty_; }
  // Continual training (train.l2_init): from now on the penalty also pulls every tensor toward `anchor` (this rank's
  // buffer of the weights training started from, laid out like params): (l2 / 2) sum (w - anchor)^2.
  void set_anchor(Vec<T> anchor, double l2);
  // Pruning (train/pruning.hpp): from now on each step multiplies the reduced gradients by `mask` (laid out like
  // params, 1 keeps, 0 prunes) before the norm and clipping, and the updated parameters after the optimizer step.
  void set_mask(Vec<float> mask);

  size_t optimizer_state_bytes() const { return optimizer_->state_bytes(); }
  AdamW<T>& optimizer() { return *optimizer_; }
  double comm_wait_ms() const { return comm_wait_ms_; }  // blocked on communication in the last step

 private:
  void launch_ready(int64_t ready_from);
  // ZeRO-1 with pruning: how many of the shard's elements have a mask, and their part of it.
  int64_t masked_in_shard() const;
  Vec<float> shard_mask() const;
  // Sum of squares of the gradients g holds for buffer range [begin, end) (g[0] is offset g_begin), over
  // the tensors that count on this rank.
  double squares(const Vec<T>& g, int64_t g_begin, int64_t begin, int64_t end) const;
  void sum_over_norm_groups(double& squares) const;
  // f(tensor index, b, e) for each tensor overlapping buffer range [begin, end), with [b, e) the overlap.
  template <class F>
  void for_each_tensor_in(int64_t begin, int64_t end, F f) const;
  // Adds the penalty's gradient to g for buffer range [begin, end) (g[0] is offset g_begin) and returns the penalty
  // of the tensors there that count on this rank.
  double add_penalty(const Vec<T>& g, int64_t g_begin, int64_t begin, int64_t end) const;
  Communicator& dp_;
  Communicator& dp_host_;
  std::vector<Communicator*> norm_groups_;
  std::vector<char> in_norm_;
  std::vector<char> regularized_;  // per tensor: train.regularize selects it
  double l1_ = 0, l2_ = 0, last_penalty_ = 0;
  Vec<T> anchor_;  // train.l2_init: the weights to pull toward (empty: none)
  double anchor_l2_ = 0;
  Vec<float> mask_;  // pruning (empty: none)
  ParamBuffer<T>& params_;
  bool zero1_;
  int64_t shard_begin_ = 0, shard_size_ = 0;
  std::vector<std::pair<int64_t, int64_t>> buckets_;  // [begin, end), from the end of the buffer backwards
  std::vector<std::vector<int>> bucket_counts_;       // ZeRO-1: per bucket, the elements each rank receives
  size_t next_bucket_ = 0;
  std::vector<Request> pending_;
  Vec<T> shard_grads_;  // ZeRO-1: this rank's reduced gradient shard
  std::unique_ptr<AdamW<T>> optimizer_;
  double comm_wait_ms_ = 0;
  double norm_ = 0;  // of the gradients reduce_gradients completed
};

}  // namespace strata
