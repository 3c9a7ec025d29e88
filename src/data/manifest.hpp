#pragma once
// The manifest of a sharded token dataset (docs/dataset-format.md, "Sharded datasets"): a directory holding
// `manifest.json` plus HDF5 shard files, each a valid single-file token dataset.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata::data {

inline constexpr const char* kShardedFormat = "strata-sharded-tokens";
inline constexpr int64_t kShardedFormatVersion = 1;
inline constexpr const char* kManifestName = "manifest.json";

struct ShardEntry {
  std::string file;      // relative to the dataset directory
  int64_t tokens = 0;    // tokens of this split stored in the shard
  uint64_t xxh64 = 0;    // XXH64 (seed 0) of the ids as little-endian uint32 values
};

struct ShardedManifest {
  std::string kind = "tokens";
  std::string dtype;     // "uint16" or "uint32" (what the writer stored)
  int64_t vocab_size = 0, eot_id = 0;
  std::string tokenizer;
  std::map<std::string, std::vector<ShardEntry>> splits;  // "train", "val" -> shards in order
};

// Streaming checksum of token ids, hashed as little-endian uint32 values (independent of the stored width).
class TokenChecksum {
 public:
  TokenChecksum();
  ~TokenChecksum();
  TokenChecksum(const TokenChecksum&) = delete;
  TokenChecksum& operator=(const TokenChecksum&) = delete;
  void update(const uint32_t* ids, size_t n);
  uint64_t digest() const;

 private:
  void* state_;
};
uint64_t token_checksum(const std::vector<uint32_t>& ids);

// The checksum as written in the manifest: 16 lowercase hex digits (a string, so no JSON reader rounds it).
std::string checksum_hex(uint64_t v);

// Reads and validates `dir/manifest.json`; errors name the file and the field.
ShardedManifest read_manifest(const std::string& dir);
// Writes `dir/manifest.json` atomically (tmp, fsync, rename).
void write_manifest(const std::string& dir, const ShardedManifest& m);

}  // namespace strata::data
