#pragma once
// Reads from dataset shards that stay open for the whole run. HDF5 reads past the end of a file truncated after it was
// opened return zeros without an error, so every read first checks that the shard still has the size it had when
// opened; and any read error is rethrown naming the shard, so that a shard that becomes unreadable mid-run (a file
// system losing data, a file overwritten in place) stops the run with its name instead of training on zeros.
#include <cstdint>
#include <string>
#include <utility>

#include "core/error.hpp"

namespace strata::data {

// The shard's size now (at open). Throws naming it.
uint64_t shard_bytes(const std::string& path);

// Throws when `path` is gone or smaller than `bytes_at_open`.
void check_shard_intact(const std::string& path, uint64_t bytes_at_open);

// check_shard_intact, then read(); an error from either names the shard and says it happened mid-run.
template <class Read>
void read_shard(const std::string& path, uint64_t bytes_at_open, Read&& read) {
  check_shard_intact(path, bytes_at_open);
  try {
    std::forward<Read>(read)();
  } catch (const Error& e) {
    STRATA_FAIL("'{}': reading the dataset shard failed during the run: {}", path, e.what());
  }
}

}  // namespace strata::data
