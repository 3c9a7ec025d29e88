#pragma once
// The arithmetic of data parallelism's gradient buckets and ZeRO-1 shards (parallel/data_parallel.hpp), as pure
// functions. Buckets are [begin, end) slices of the (padded) gradient buffer, listed from its end backwards: the
// order in which backward completes them. With ZeRO-1 the padded buffer splits into equal shards, rank r owning
// [r * shard_size, (r + 1) * shard_size), and each bucket is reduce-scattered: rank r receives the part of the
// bucket inside its shard (possibly nothing).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace strata {

// Elements per bucket for parallel.bucket_mb MiB of elements of `element_bytes` bytes (at least 1). Throws unless
// a bucket holds fewer than 2^31 elements (MPI counts are int).
int64_t bucket_elements(double bucket_mb, std::size_t element_bytes);

// Buckets of at most bucket_elements elements tiling [0, extent) from its end backwards: [extent - b, extent),
// [extent - 2b, extent - b), ..., the first bucket of the buffer (the last listed) takes what remains.
std::vector<std::pair<int64_t, int64_t>> gradient_buckets(int64_t extent, int64_t bucket_elements);

// The size of each of `ranks` equal shards of a padded buffer of `padded` elements; throws unless ranks divides it.
int64_t shard_size(int64_t padded, int ranks);

// Per rank r of `ranks`: the elements of bucket [begin, end) inside shard [r * shard_size, (r + 1) * shard_size)
// (0 where the bucket misses the shard). For a bucket inside the padded buffer they sum to end - begin, and rank
// r's part is the r-th consecutive block of the bucket.
std::vector<int> bucket_shard_counts(int64_t begin, int64_t end, int64_t shard_size, int ranks);

}  // namespace strata
