#pragma once
// The manifest of a sharded dataset (docs/dataset-format.md, "Sharded datasets"): a directory holding
// `manifest.json` plus HDF5 shard files. Three kinds share it: `tokens` (a token stream for language models),
// `images` (x [N, C, H, W], y [N]) and `sequences` (x [N, T, F], y [N] or [N, T]).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata::data {

inline constexpr const char* kDatasetFormat = "strata-dataset";
inline constexpr int64_t kDatasetFormatVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";

struct ShardEntry {
  std::string file;    // relative to the dataset directory
  int64_t count = 0;   // tokens (kind tokens) or samples (images, sequences) of this split in the shard
  uint64_t xxh64 = 0;  // tokens: of the ids as LE uint32; arrays: of x (stored dtype, LE) then y (LE int32)
};

struct DatasetManifest {
  std::string kind = "tokens";  // "tokens", "images" or "sequences"
  std::string dtype;            // tokens: "uint16" | "uint32"; arrays: the dtype of x, "uint8" | "float32"
  // kind tokens
  int64_t vocab_size = 0, eot_id = 0;
  std::string tokenizer;       // "byte" or "bpe"
  std::string tokenizer_file;  // bpe: the tokenizer's JSON inside the dataset directory
  uint64_t tokenizer_xxh64 = 0;
  // kinds images and sequences
  std::vector<int64_t> sample_shape;  // images [C, H, W]; sequences [T, F]
  std::vector<int64_t> label_shape;   // [] (one label per sample) or, for sequences, [T]
  int64_t num_classes = 0;            // every label is in [0, num_classes)
  std::vector<double> mean, std;      // images: per-channel statistics of the train split (empty: none stored)
  std::map<std::string, std::vector<ShardEntry>> splits;  // "train", "val" -> shards in order

  bool is_tokens() const { return kind == "tokens"; }
  int64_t sample_elems() const;                   // product of sample_shape
  int64_t label_elems() const;                    // product of label_shape (1 for [])
  int64_t total(const std::string& split) const;  // tokens or samples of the split
  const char* count_field() const { return is_tokens() ? "tokens" : "samples"; }
};

// Streaming XXH64 (seed 0). Token ids go through update_ids (hashed as LE uint32, independent of the stored width).
class StreamChecksum {
 public:
  StreamChecksum();
  ~StreamChecksum();
  StreamChecksum(const StreamChecksum&) = delete;
  StreamChecksum& operator=(const StreamChecksum&) = delete;
  void update(const void* bytes, size_t n);
  void update_ids(const uint32_t* ids, size_t n);
  uint64_t digest() const;

 private:
  void* state_;
};
uint64_t token_checksum(const std::vector<uint32_t>& ids);

// The checksum as written in the manifest: 16 lowercase hex digits (a string, so no JSON reader rounds it).
std::string checksum_hex(uint64_t v);
// XXH64 of a whole file's bytes (the BPE tokenizer file).
uint64_t file_checksum(const std::string& path);

// Reads and validates `dir/manifest.json`; errors name the file and the field.
DatasetManifest read_manifest(const std::string& dir);
// Writes `dir/manifest.json` atomically (tmp, fsync, rename).
void write_manifest(const std::string& dir, const DatasetManifest& m);

}  // namespace strata::data
