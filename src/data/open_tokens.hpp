#pragma once
// Opens a token dataset whichever form it has: a single HDF5 file, or a directory of shards with a manifest
// (docs/dataset-format.md). The trainer and `strata eval` go through here.
#include <functional>
#include <memory>
#include <string>

#include "data/token_dataset.hpp"
#include "data/window_source.hpp"

namespace strata::data {

// True when `path` is a sharded dataset (a directory).
bool is_sharded_dataset(const std::string& path);

// vocab_size, eot_id, tokenizer and the token counts of either form; throws naming the path and field.
TokenDatasetInfo inspect_tokens(const std::string& path);

// One split ("train" or "val") as windows of seq_len + 1 tokens. on_verified(tokens): a sharded dataset's progress,
// after each shard's checksum.
std::unique_ptr<WindowSource> open_token_split(const std::string& path, const std::string& split, int seq_len,
                                               int64_t model_vocab_size,
                                               const std::function<void(int64_t)>& on_verified = {});

}  // namespace strata::data
