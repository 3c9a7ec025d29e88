#include "data/array_batches.hpp"

#include "core/error.hpp"

namespace strata::data {

ArrayBatches::ArrayBatches(const ArraySplit& split, const BatchSampler& sampler, int global_batch, int dp, int dp_rank,
                           bool normalize, const AugmentOptions& augment)
    : split_(split), sampler_(sampler), global_batch_(global_batch), dp_(dp), dp_rank_(dp_rank),
      local_(global_batch / dp), normalize_(normalize), augment_(augment) {
  STRATA_CHECK(global_batch > 0 && global_batch % dp == 0, "{}: batch size {} does not split over {} ranks",
               split.describe(), global_batch, dp);
  STRATA_CHECK(sampler.num_windows() == split.num_samples(), "{}: sampler over {} samples, split holds {}",
               split.describe(), sampler.num_windows(), split.num_samples());
  const auto& m = split.manifest();
  if (normalize) {
    STRATA_CHECK(!m.mean.empty(), "{}: normalization requested but the manifest stores no 'normalization' statistics",
                 split.describe());
    stats_.mean = m.mean;
    stats_.std = m.std;
  }
  if (augment.any()) {
    STRATA_CHECK(m.kind == "images", "{}: augmentation applies to images, this dataset holds {}", split.describe(),
                 m.kind);
    validate(augment, int(m.sample_shape[1]), int(m.sample_shape[2]));
  }
}

ArrayBatch ArrayBatches::prototype() const {
  ArrayBatch b;
  b.x.resize(size_t(local_) * size_t(split_.sample_elems()));
  b.y.resize(size_t(local_) * size_t(split_.label_elems()));
  b.samples.resize(size_t(local_));
  return b;
}

int64_t ArrayBatches::bytes_per_step() const {
  const int64_t item = split_.manifest().dtype == "uint8" ? 1 : 4;
  return int64_t(local_) * (split_.sample_elems() * item + split_.label_elems() * 4);
}

void ArrayBatches::fill(int64_t step, ArrayBatch& out) const {
  const int64_t first = step * global_batch_;  // the global position of this step's first sample
  out.samples = sampler_.rank_batch(first, global_batch_, dp_, dp_rank_);
  split_.read(out.samples.data(), local_, out.x.data(), out.y.data());
  const auto& m = split_.manifest();
  const int64_t se = split_.sample_elems();
  if (!normalize_ && !augment_.any()) return;
  const bool images = m.kind == "images";
  // Images normalize per channel, then augment; sequences normalize per feature (the last axis).
  std::vector<float> scratch(static_cast<size_t>(se));
  for (int j = 0; j < local_; ++j) {
    float* x = out.x.data() + size_t(j) * size_t(se);
    if (images) {
      const int c = int(m.sample_shape[0]), h = int(m.sample_shape[1]), w = int(m.sample_shape[2]);
      if (normalize_) normalize_image(x, c, h, w, stats_);
      const int64_t g = first + int64_t(dp_rank_) * local_ + j;
      if (augment_.any()) augment_image(x, c, h, w, augment_, uint64_t(g), scratch.data());
    } else if (normalize_) {
      const int64_t F = m.sample_shape[1];
      for (int64_t i = 0; i < se; ++i) {
        const double sd = stats_.std[size_t(i % F)] > 0 ? stats_.std[size_t(i % F)] : 1.0;
        x[i] = float((double(x[i]) - stats_.mean[size_t(i % F)]) / sd);
      }
    }
  }
}

}  // namespace strata::data
