#include "data/array_batches.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace strata::data {

ArrayBatches::ArrayBatches(const ArraySplit& split, const BatchSampler& sampler, int global_batch, int dp, int dp_rank,
                           bool normalize, const AugmentOptions& augment)
    : split_(split),
      sampler_(sampler),
      global_batch_(global_batch),
      dp_(dp),
      dp_rank_(dp_rank),
      local_(global_batch / dp),
      normalize_(normalize),
      augment_(augment) {
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

void normalize_samples(const DatasetManifest& m, const ChannelStats& stats, float* x, int64_t n) {
  const int64_t se = m.sample_elems();
  for (int64_t j = 0; j < n; ++j) {
    float* sample = x + j * se;
    if (m.kind == "images") {
      normalize_image(sample, int(m.sample_shape[0]), int(m.sample_shape[1]), int(m.sample_shape[2]), stats);
      continue;
    }
    const int64_t F = m.sample_shape[1];
    for (int64_t i = 0; i < se; ++i) {
      const double sd = stats.std[size_t(i % F)] > 0 ? stats.std[size_t(i % F)] : 1.0;
      sample[i] = float((double(sample[i]) - stats.mean[size_t(i % F)]) / sd);
    }
  }
}

void ArrayBatches::fill(int64_t step, ArrayBatch& out) const {
  fill_at(step * global_batch_, out.x.data(), out.y.data(), out.samples.data());
}

void ArrayBatches::fill_at(int64_t first, float* x_out, int32_t* y_out, int64_t* samples_out) const {
  std::vector<int64_t> positions(static_cast<size_t>(local_));
  for (int j = 0; j < local_; ++j) positions[size_t(j)] = first + int64_t(dp_rank_) * local_ + j;
  fill_positions(positions, x_out, y_out, samples_out);
}

void ArrayBatches::fill_positions(const std::vector<int64_t>& positions, float* x_out, int32_t* y_out,
                                  int64_t* samples_out) const {
  const int64_t n = int64_t(positions.size());
  std::vector<int64_t> samples(positions.size());
  for (size_t j = 0; j < positions.size(); ++j) samples[j] = sampler_.sample_at(positions[j]);
  std::copy(samples.begin(), samples.end(), samples_out);
  split_.read(samples.data(), n, x_out, y_out);
  const auto& m = split_.manifest();
  const int64_t se = split_.sample_elems();
  if (normalize_) normalize_samples(m, stats_, x_out, n);
  if (!augment_.any()) return;
  // Images only (checked at construction): augment after normalizing, keyed by each sample's global position.
  std::vector<float> scratch(static_cast<size_t>(se));
  const int c = int(m.sample_shape[0]), h = int(m.sample_shape[1]), w = int(m.sample_shape[2]);
  for (int64_t j = 0; j < n; ++j)
    augment_image(x_out + size_t(j) * size_t(se), c, h, w, augment_, uint64_t(positions[size_t(j)]), scratch.data());
}

}  // namespace strata::data
