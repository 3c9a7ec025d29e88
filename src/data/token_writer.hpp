#pragma once
// Writes a token dataset (docs/dataset-format.md) atomically: to `path.tmp`, fsync, then rename, so an interrupted
// run never leaves a partial file under the final name and never damages an existing one.
#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

struct TokenDatasetMeta {
  int64_t vocab_size = 0;
  int64_t eot_id = 0;
  std::string tokenizer;
  std::string tokenizer_json;  // tokenizer "bpe": its merges (BpeTokenizer::to_json), stored with the dataset
};

// Stores ids as uint16 when vocab_size <= 65536, else uint32. Checks every id < vocab_size.
void write_token_dataset(const std::string& path, const TokenDatasetMeta& meta, const std::vector<uint32_t>& train,
                         const std::vector<uint32_t>& val);

}  // namespace strata::data
