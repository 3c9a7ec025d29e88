#include "data/batch_sampler.hpp"

#include <utility>

#include "core/error.hpp"

namespace strata::data {
namespace {
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, bound) by rejection, so no value is favoured (plain modulo is biased).
uint64_t below(uint64_t& state, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t r;
  do r = splitmix64(state);
  while (r >= limit);
  return r % bound;
}
}  // namespace

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  // Mix seed and stream so that nearby (seed, epoch) pairs give unrelated orders.
  uint64_t mix = seed;
  uint64_t state = splitmix64(mix) ^ (stream * 0xD1B54A32D192ED03ull);
  splitmix64(state);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[below(state, static_cast<uint64_t>(i) + 1)]);
  return perm;
}

BatchSampler::BatchSampler(int64_t num_windows, int batch, bool shuffle, uint64_t seed)
    : num_windows_(num_windows), batch_(batch), shuffle_(shuffle), seed_(seed) {
  STRATA_CHECK(num_windows > 0, "BatchSampler: num_windows must be > 0, got {}", num_windows);
  STRATA_CHECK(batch > 0, "BatchSampler: batch size must be > 0, got {}", batch);
}

BatchSampler::BatchSampler(const BatchSampler& o)
    : num_windows_(o.num_windows_), batch_(o.batch_), shuffle_(o.shuffle_), seed_(o.seed_) {}

const std::vector<int64_t>& BatchSampler::permutation(int64_t epoch) const {
  if (cached_epoch_ != epoch) {
    cached_perm_ = seeded_permutation(num_windows_, seed_, static_cast<uint64_t>(epoch));
    cached_epoch_ = epoch;
  }
  return cached_perm_;
}

std::vector<int64_t> BatchSampler::windows_for_step(int64_t step) const {
  STRATA_CHECK(step >= 0, "BatchSampler: step must be >= 0, got {}", step);
  return rank_batch(step * batch_, batch_, 1, 0);
}

int64_t BatchSampler::sample_at(int64_t g) const {
  STRATA_CHECK(g >= 0, "BatchSampler: sample position must be >= 0, got {}", g);
  const int64_t epoch = g / num_windows_, local = g % num_windows_;
  if (!shuffle_) return local;
  std::lock_guard<std::mutex> lock(mutex_);
  return permutation(epoch)[size_t(local)];
}

std::vector<int64_t> BatchSampler::rank_batch(int64_t consumed, int global_batch, int dp, int dp_rank) const {
  STRATA_CHECK(consumed >= 0 && dp > 0 && dp_rank >= 0 && dp_rank < dp && global_batch > 0 && global_batch % dp == 0,
               "BatchSampler: bad batch request (consumed {}, global batch {}, dp rank {} of {})", consumed,
               global_batch, dp_rank, dp);
  const int local = global_batch / dp;
  std::vector<int64_t> out(static_cast<size_t>(local));
  for (int j = 0; j < local; ++j) out[size_t(j)] = sample_at(consumed + int64_t(dp_rank) * local + j);
  return out;
}

std::vector<int64_t> BatchSampler::epoch_order(int64_t epoch) const {
  STRATA_CHECK(epoch >= 0, "BatchSampler: epoch must be >= 0, got {}", epoch);
  if (!shuffle_) {
    std::vector<int64_t> identity(num_windows_);
    for (int64_t i = 0; i < num_windows_; ++i) identity[i] = i;
    return identity;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return permutation(epoch);
}

}  // namespace strata::data
