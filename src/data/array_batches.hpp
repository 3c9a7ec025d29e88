#pragma once
// This data-parallel rank's share of each global batch from an array dataset (images, sequences): which samples
// (BatchSampler::rank_batch, a pure function of seed, epoch and global position), read in one HDF5 call per shard,
// normalized with the manifest's statistics and, for images, augmented with draws keyed by each sample's global
// position, so the batch content is the same for any dp size. Fill is thread-safe (runs in the prefetch thread).
#include <cstdint>
#include <vector>

#include "data/array_dataset.hpp"
#include "data/augment.hpp"
#include "data/batch_sampler.hpp"

namespace strata::data {

struct ArrayBatch {
  std::vector<float> x;          // [local, sample_shape...]
  std::vector<int32_t> y;        // [local, label_shape...]
  std::vector<int64_t> samples;  // the split's sample index of each row
};

// Normalizes n samples x [n, sample_shape] in place with the statistics: images per channel, sequences per feature
// (the last axis). A statistic with std 0 divides by 1.
void normalize_samples(const DatasetManifest& m, const ChannelStats& stats, float* x, int64_t n);

class ArrayBatches {
 public:
  // normalize: apply the manifest's mean/std (error if the manifest stores none). augment: images only.
  ArrayBatches(const ArraySplit& split, const BatchSampler& sampler, int global_batch, int dp, int dp_rank,
               bool normalize, const AugmentOptions& augment);

  ArrayBatch prototype() const;  // buffers of the right size
  // The batch of `step` (global positions step * global_batch ...).
  void fill(int64_t step, ArrayBatch& out) const;
  // This rank's share of the global batch that starts at global position `consumed` (a resumed run continues
  // from the samples consumed, whatever the batch size before): x [local, sample], y [local, label], samples [local].
  void fill_at(int64_t consumed, float* x, int32_t* y, int64_t* samples) const;
  // Rows at the given global positions of this split's sample order (any positions, any number of rows): read,
  // normalized and augmented as fill_at does them. For batches mixed from two datasets (replay).
  void fill_positions(const std::vector<int64_t>& positions, float* x, int32_t* y, int64_t* samples) const;
  int local_batch() const { return local_; }
  int64_t bytes_per_step() const;  // of x and y as stored on disk, for bandwidth figures

 private:
  const ArraySplit& split_;
  const BatchSampler& sampler_;
  int global_batch_, dp_, dp_rank_, local_;
  bool normalize_;
  AugmentOptions augment_;
  ChannelStats stats_;
};

}  // namespace strata::data
