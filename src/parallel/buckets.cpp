#include "parallel/buckets.hpp"

#include <algorithm>
#include <climits>

#include "core/error.hpp"

namespace strata {

int64_t bucket_elements(double bucket_mb, std::size_t element_bytes) {
  const int64_t bucket = std::max<int64_t>(1, int64_t(bucket_mb * (1 << 20) / double(element_bytes)));
  STRATA_CHECK(bucket < INT32_MAX, "parallel.bucket_mb = {}: buckets must hold fewer than 2^31 elements", bucket_mb);
  return bucket;
}

std::vector<std::pair<int64_t, int64_t>> gradient_buckets(int64_t extent, int64_t bucket_elements) {
  STRATA_CHECK(bucket_elements >= 1, "gradient buckets of {} elements (expected >= 1)", bucket_elements);
  std::vector<std::pair<int64_t, int64_t>> buckets;
  for (int64_t end = extent; end > 0; end -= bucket_elements)
    buckets.push_back({std::max<int64_t>(0, end - bucket_elements), end});
  return buckets;
}

int64_t shard_size(int64_t padded, int ranks) {
  STRATA_CHECK(ranks >= 1 && padded % ranks == 0,
               "ZeRO-1: parameter buffer of {} elements does not split over {} ranks", padded, ranks);
  return padded / ranks;
}

std::vector<int> bucket_shard_counts(int64_t begin, int64_t end, int64_t shard_size, int ranks) {
  std::vector<int> counts(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    counts[size_t(r)] =
        int(std::max<int64_t>(0, std::min(end, shard_size * (r + 1)) - std::max(begin, shard_size * r)));
  return counts;
}

}  // namespace strata
