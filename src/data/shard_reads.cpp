#include "data/shard_reads.hpp"

#include <filesystem>

namespace strata::data {

uint64_t shard_bytes(const std::string& path) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  STRATA_CHECK(!ec, "'{}': cannot read the dataset shard's size: {}", path, ec.message());
  return uint64_t(bytes);
}

void check_shard_intact(const std::string& path, uint64_t bytes_at_open) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  STRATA_CHECK(!ec, "'{}': the dataset shard became unreadable during the run ({}); stopping", path, ec.message());
  STRATA_CHECK(uint64_t(bytes) >= bytes_at_open,
               "'{}': the dataset shard shrank from {} to {} bytes during the run (truncated or overwritten?); "
               "stopping rather than reading zeros",
               path, bytes_at_open, uint64_t(bytes));
}

}  // namespace strata::data
