#pragma once
// Array datasets (kinds `images` and `sequences`, docs/dataset-format.md): each shard file holds `x` [n,
// ...sample_shape] (uint8 or float32) and `y` [n, ...label_shape] (int32) of one split; the manifest lists the shards
// per split.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/h5.hpp"
#include "data/manifest.hpp"

namespace strata::data {

inline constexpr const char* kArrayShardFormat = "strata-dataset-shard";

// Writes `dir/file` atomically (tmp, fsync, rename): x[n, sample_shape] stored as m.dtype, y[n, label_shape] int32.
// Checks labels against m.num_classes and (float32) that every value is finite, naming the sample. Returns the
// shard's manifest entry (count and checksum). X is uint8_t (m.dtype "uint8") or float (m.dtype "float32").
template <class X>
ShardEntry write_array_shard(const std::string& dir, const std::string& file, const std::string& split,
                             const DatasetManifest& m, const X* x, const int32_t* y, int64_t n);

// One split of an array dataset. Opening checks every shard against the manifest (file present and HDF5, x/y
// shapes and dtypes, sample count) and, with verify, reads everything once: checksums, labels in range, finite
// floats. Errors name the manifest field, the shard file and the sample. Thread-safe reads (HDF5 is serialised).
class ArraySplit {
 public:
  // on_verified(samples): called after each shard is verified (progress of `strata dataset verify`).
  ArraySplit(const std::string& dir, const std::string& split, bool verify = true,
             const std::function<void(int64_t)>& on_verified = {});

  const DatasetManifest& manifest() const { return manifest_; }
  // Samples as read(): the split's, or the selected ones after select().
  int64_t num_samples() const { return selected_.empty() ? num_samples_ : int64_t(selected_.size()); }
  int64_t sample_elems() const { return sample_elems_; }
  int64_t label_elems() const { return label_elems_; }
  std::string describe() const { return dir_ + ": " + split_ + note_; }

  // From now on sample i of this split is the split's sample members[i] (a cross-validation fold, or the folds
  // trained on while it is held out); `note` is added to describe(). members must be in range.
  void select(std::vector<int64_t> members, const std::string& note);
  // Every sample's label (label_elems() per sample) in the split's order, ignoring select().
  std::vector<int32_t> all_labels() const;

  // x[n * sample_elems] as float32 (uint8 converted exactly), y[n * label_elems] for samples indices[0..n) (any
  // order, repeats allowed). One HDF5 read per shard touched, however scattered the indices.
  void read(const int64_t* indices, int64_t n, float* x, int32_t* y) const;

 private:
  struct Shard {
    std::string path;
    int64_t start = 0, count = 0;  // first sample's index in the split
    uint64_t bytes = 0;            // the file's size when opened (data/shard_reads.hpp)
    h5::Handle file, x, y;         // datasets close before the file
  };
  void verify_shard(const Shard& s, const ShardEntry& e, size_t index) const;

  std::string dir_, split_, manifest_path_;
  DatasetManifest manifest_;
  std::vector<Shard> shards_;
  int64_t num_samples_ = 0, sample_elems_ = 0, label_elems_ = 0;
  std::vector<int64_t> selected_;  // empty: every sample
  std::string note_;
};

}  // namespace strata::data
