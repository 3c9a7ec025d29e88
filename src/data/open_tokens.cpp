#include "data/open_tokens.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "data/sharded_tokens.hpp"

namespace strata::data {
namespace {
std::string read_tokenizer_file(const std::string& dir, const DatasetManifest& m) {
  const std::string path = (std::filesystem::path(dir) / m.tokenizer_file).string();
  std::error_code ec;
  STRATA_CHECK(std::filesystem::is_regular_file(path, ec), "{}/{}: field 'tokenizer_file': '{}' not found", dir,
               kManifestName, path);
  const uint64_t sum = file_checksum(path);
  STRATA_CHECK(sum == m.tokenizer_xxh64, "{}: checksum mismatch: xxh64 {}, manifest field 'tokenizer_xxh64' says {}",
               path, checksum_hex(sum), checksum_hex(m.tokenizer_xxh64));
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

bool is_sharded_dataset(const std::string& path) { return std::filesystem::is_directory(path); }

TokenDatasetInfo inspect_tokens(const std::string& path) {
  if (!is_sharded_dataset(path)) return inspect_token_dataset(path);
  const auto m = read_manifest(path);
  TokenDatasetInfo info;
  info.path = path;
  info.vocab_size = m.vocab_size;
  info.eot_id = m.eot_id;
  info.tokenizer = m.tokenizer;
  if (!m.tokenizer_file.empty()) info.tokenizer_json = read_tokenizer_file(path, m);
  for (const auto& [split, shards] : m.splits)
    for (const auto& s : shards) (split == "train" ? info.train_tokens : info.val_tokens) += s.count;
  return info;
}

std::unique_ptr<WindowSource> open_token_split(const std::string& path, const std::string& split, int seq_len,
                                               int64_t model_vocab_size,
                                               const std::function<void(int64_t)>& on_verified) {
  if (is_sharded_dataset(path))
    return std::make_unique<ShardedTokenWindows>(path, split, seq_len, model_vocab_size, true, on_verified);
  return std::make_unique<TokenWindows>(path, split, seq_len, model_vocab_size);
}

}  // namespace strata::data
