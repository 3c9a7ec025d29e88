#pragma once
// Which windows make up each step's batch: a pure function of (num_windows, batch, shuffle, seed, step), so a
// resumed run (at any data-parallel size) replays the same order. See docs/dataset-format.md, "Order".
#include <cstdint>
#include <mutex>
#include <vector>

namespace strata::data {

class BatchSampler {
 public:
  BatchSampler(int64_t num_windows, int batch, bool shuffle, uint64_t seed);
  BatchSampler(const BatchSampler& o);

  // Global window index w = step*B + j (j < B); epoch = w / num_windows, local = w % num_windows;
  // window = local (no shuffle) or permutation(seed, epoch)[local].
  std::vector<int64_t> windows_for_step(int64_t step) const;
  // Position g of the global sample order, g = the number of samples consumed before it (all ranks, all steps):
  // epoch = g / num_windows, local = g % num_windows; local (no shuffle) or permutation(seed, epoch)[local].
  // A pure function of (seed, epoch, g): a run resumed from "consumed samples" alone replays the same order.
  int64_t sample_at(int64_t g) const;
  // What data-parallel rank dp_rank of dp reads for the global batch that starts at position `consumed`:
  // positions consumed + dp_rank * local + j for j < local = global_batch / dp (global_batch % dp == 0).
  std::vector<int64_t> rank_batch(int64_t consumed, int global_batch, int dp, int dp_rank) const;
  // The shuffle order of one epoch (identity when shuffle is off). Exposed for tests and tools.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  int64_t num_windows() const { return num_windows_; }
  int batch() const { return batch_; }
  bool shuffle() const { return shuffle_; }
  uint64_t seed() const { return seed_; }

 private:
  const std::vector<int64_t>& permutation(int64_t epoch) const;

  int64_t num_windows_;
  int batch_;
  bool shuffle_;
  uint64_t seed_;
  // One cached epoch (steps advance monotonically, so it is almost always the one asked for). Guarded so a
  // prefetch thread and the trainer may share one sampler; permutation() is called with mutex_ held.
  mutable std::mutex mutex_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_perm_;
};

// Fisher-Yates over 0..n-1 driven by splitmix64 (not std::shuffle, whose algorithm differs between standard
// libraries): the same (n, seed, epoch) gives the same permutation on every platform.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace strata::data
