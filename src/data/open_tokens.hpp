#pragma once
// Opens a token dataset whichever form it has: a single HDF5 file, or a directory of shards with a manifest
// (docs/dataset-format.md). The trainer and `strata eval` go through here.
#include <memory>
#include <string>

#include "data/token_dataset.hpp"
#include "data/window_source.hpp"

namespace strata::data {

// True when `path` is a sharded dataset (a directory).
bool is_sharded_dataset(const std::string& path);

// vocab_size, eot_id, tokenizer and the token counts of either form; throws naming the path and field.
TokenDatasetInfo inspect_tokens(const std::string& path);

// One split ("train" or "val") as windows of seq_len + 1 tokens.
std::unique_ptr<WindowSource> open_token_split(const std::string& path, const std::string& split, int seq_len,
                                               int64_t model_vocab_size);

}  // namespace strata::data
