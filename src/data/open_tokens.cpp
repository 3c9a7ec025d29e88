#include "data/open_tokens.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "data/sharded_tokens.hpp"

namespace strata::data {

bool is_sharded_dataset(const std::string& path) { return std::filesystem::is_directory(path); }

TokenDatasetInfo inspect_tokens(const std::string& path) {
  if (!is_sharded_dataset(path)) return inspect_token_dataset(path);
  const auto m = read_manifest(path);
  TokenDatasetInfo info;
  info.path = path;
  info.vocab_size = m.vocab_size;
  info.eot_id = m.eot_id;
  info.tokenizer = m.tokenizer;
  for (const auto& [split, shards] : m.splits)
    for (const auto& s : shards) (split == "train" ? info.train_tokens : info.val_tokens) += s.tokens;
  return info;
}

std::unique_ptr<WindowSource> open_token_split(const std::string& path, const std::string& split, int seq_len,
                                               int64_t model_vocab_size) {
  if (is_sharded_dataset(path)) return std::make_unique<ShardedTokenWindows>(path, split, seq_len, model_vocab_size);
  return std::make_unique<TokenWindows>(path, split, seq_len, model_vocab_size);
}

}  // namespace strata::data
