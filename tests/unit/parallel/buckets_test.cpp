// Data parallelism's bucket and ZeRO-1 shard arithmetic (parallel/buckets.hpp) and the gradient-norm flags
// (norm_flags, parallel/data_parallel.hpp), checked exhaustively over small sizes against their definitions.
#include "parallel/buckets.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/common.hpp"
#include "models/model_factory.hpp"
#include "nn/param_buffer.hpp"
#include "parallel/data_parallel.hpp"

namespace strata {
namespace {

TEST(GradientBuckets, TileTheBufferExactlyFromItsEndBackwards) {
  for (int64_t extent = 0; extent <= 70; ++extent) {
    for (int64_t bucket : {1, 2, 3, 7, 16, 69, 70, 71, 1000}) {
      const auto buckets = gradient_buckets(extent, bucket);
      const std::string at = "extent " + std::to_string(extent) + ", bucket " + std::to_string(bucket);
      ASSERT_EQ(int64_t(buckets.size()), (extent + bucket - 1) / bucket) << at;
      int64_t expected_end = extent;  // each bucket ends where the previous one (later in the buffer) began
      for (size_t i = 0; i < buckets.size(); ++i) {
        const auto [b, e] = buckets[i];
        ASSERT_EQ(e, expected_end) << at << ", bucket " << i;
        ASSERT_LT(b, e) << at << ", bucket " << i;
        ASSERT_LE(e - b, bucket) << at << ", bucket " << i;
        // Every bucket is full except the first of the buffer (listed last).
        if (i + 1 < buckets.size()) {
          ASSERT_EQ(e - b, bucket) << at << ", bucket " << i;
        }
        expected_end = b;
      }
      ASSERT_EQ(expected_end, 0) << at << ": the buckets must reach the start of the buffer";
    }
  }
}

TEST(GradientBuckets, ExamplesByHand) {
  using B = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(gradient_buckets(10, 4), (B{{6, 10}, {2, 6}, {0, 2}}));
  EXPECT_EQ(gradient_buckets(8, 4), (B{{4, 8}, {0, 4}}));
  EXPECT_EQ(gradient_buckets(3, 100), (B{{0, 3}}));
  EXPECT_TRUE(gradient_buckets(0, 4).empty());
  EXPECT_THROW(gradient_buckets(10, 0), Error);
}

TEST(GradientBuckets, ElementsPerBucketFromMebibytes) {
  EXPECT_EQ(bucket_elements(1, sizeof(float)), (1 << 20) / 4);
  EXPECT_EQ(bucket_elements(1, sizeof(double)), (1 << 20) / 8);
  EXPECT_EQ(bucket_elements(0.5, sizeof(double)), (1 << 19) / 8);
  EXPECT_EQ(bucket_elements(1e-9, sizeof(float)), 1);  // never below one element
  EXPECT_EQ(bucket_elements(16, sizeof(float)), 16 * (1 << 20) / 4);
  EXPECT_EQ(bucket_elements(8191.99, sizeof(float)), int64_t(8191.99 * (1 << 20) / 4));
  EXPECT_THROW(bucket_elements(8192, sizeof(float)), Error);  // 2^31 elements: too many for an int count
  EXPECT_THROW(bucket_elements(1e6, sizeof(double)), Error);
}

TEST(Zero1Shards, EqualShardsOfThePaddedBuffer) {
  EXPECT_EQ(shard_size(12, 4), 3);
  EXPECT_EQ(shard_size(12, 1), 12);
  EXPECT_EQ(shard_size(0, 3), 0);
  EXPECT_THROW(shard_size(10, 4), Error);
  EXPECT_THROW(shard_size(10, 0), Error);
}

TEST(Zero1Shards, ParamBufferPadsToAMultipleOfTheRanksWithZeros) {
  for (int64_t n : {1, 5, 7, 8, 13, 64}) {
    for (int ranks : {1, 2, 3, 4, 8}) {
      TensorSpec a, b;
      a.name = "a", a.shape = a.global_shape = {n};
      b.name = "b", b.shape = b.global_shape = {2, 3};
      ParamBuffer<double> buffer({a, b}, size_t(ranks));
      const int64_t size = n + 6, padded = int64_t(buffer.padded_size());
      ASSERT_EQ(int64_t(buffer.size()), size);
      ASSERT_EQ(padded % ranks, 0) << n << " over " << ranks;
      ASSERT_GE(padded, size);
      ASSERT_LT(padded - size, ranks) << "more padding than needed";
      ASSERT_EQ(shard_size(padded, ranks) * ranks, padded);
      auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffer.params());
      for (int64_t i = size; i < padded; ++i) ASSERT_EQ(host(i), 0.0) << "padding element " << i;
    }
  }
}

TEST(Zero1Shards, PerRankCountsSplitEveryBucketAlongTheShards) {
  for (int ranks : {1, 2, 3, 4, 8}) {
    for (int64_t shard : {1, 2, 5, 9}) {
      const int64_t padded = shard * ranks;
      for (int64_t bucket : {1, 2, 3, 4, 7, 10, 100}) {
        for (const auto& [b, e] : gradient_buckets(padded, bucket)) {
          const auto counts = bucket_shard_counts(b, e, shard, ranks);
          const std::string at = std::to_string(ranks) + " ranks, shard " + std::to_string(shard) + ", bucket [" +
                                 std::to_string(b) + ", " + std::to_string(e) + ")";
          ASSERT_EQ(int(counts.size()), ranks) << at;
          ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t(0)), e - b) << at;
          // Rank r's part is the r-th consecutive block of the bucket, and lies inside r's shard; the elements
          // of the bucket inside the shard are all of them.
          int64_t at_elem = b;
          for (int r = 0; r < ranks; ++r) {
            const int c = counts[size_t(r)];
            ASSERT_GE(c, 0) << at << ", rank " << r;
            const int64_t s0 = shard * r, s1 = shard * (r + 1);
            int64_t inside = 0;
            for (int64_t i = b; i < e; ++i) inside += (i >= s0 && i < s1);
            ASSERT_EQ(c, inside) << at << ", rank " << r;
            if (c > 0) {
              ASSERT_GE(at_elem, s0) << at << ", rank " << r;
              ASSERT_LE(at_elem + c, s1) << at << ", rank " << r;
            }
            at_elem += c;
          }
        }
      }
    }
  }
}

TEST(Zero1Shards, CountsByHandIncludingEmptyParts) {
  // Shards of 4 over 3 ranks: [0, 4) [4, 8) [8, 12).
  EXPECT_EQ(bucket_shard_counts(0, 12, 4, 3), (std::vector<int>{4, 4, 4}));
  EXPECT_EQ(bucket_shard_counts(9, 12, 4, 3), (std::vector<int>{0, 0, 3}));  // misses ranks 0 and 1
  EXPECT_EQ(bucket_shard_counts(2, 9, 4, 3), (std::vector<int>{2, 4, 1}));
  EXPECT_EQ(bucket_shard_counts(5, 7, 4, 3), (std::vector<int>{0, 2, 0}));
  EXPECT_EQ(bucket_shard_counts(0, 1, 4, 3), (std::vector<int>{1, 0, 0}));
  EXPECT_EQ(bucket_shard_counts(4, 8, 4, 3), (std::vector<int>{0, 4, 0}));
}

TensorSpec spec(const std::string& name, int split, int tp_rank, int tp_size, bool tied_copy = false) {
  TensorSpec s;
  s.name = name;
  s.shape = s.global_shape = {4, 4};
  s.shard = ShardMap{split, 1, tp_rank, tp_size, 4, 4};
  s.tied = tied_copy;
  s.tied_copy = tied_copy;
  return s;
}

TEST(NormFlags, ReplicatedOnTpRankZeroOnlyAndTiedCopiesNever) {
  for (int tp : {1, 2, 4}) {
    for (int r = 0; r < tp; ++r) {
      const std::vector<TensorSpec> specs = {spec("rows", 0, r, tp), spec("cols", 1, r, tp),
                                             spec("replicated", -1, r, tp), spec("wte_copy", 0, r, tp, true),
                                             spec("replicated_copy", -1, r, tp, true)};
      const auto flags = norm_flags(specs, r);
      ASSERT_EQ(flags.size(), specs.size());
      // A split tensor counts on every rank (each holds a different part), unless tp is 1 where it is whole
      // on rank 0 and so replicated; a replicated one only on tp rank 0; a tied copy never.
      EXPECT_TRUE(flags[0]) << "tp " << tp << " rank " << r;
      EXPECT_TRUE(flags[1]) << "tp " << tp << " rank " << r;
      EXPECT_EQ(bool(flags[2]), r == 0) << "tp " << tp << " rank " << r;
      EXPECT_FALSE(flags[3]) << "tp " << tp << " rank " << r;
      EXPECT_FALSE(flags[4]) << "tp " << tp << " rank " << r;
    }
  }
}

TEST(NormFlags, EveryGptElementCountedExactlyOnceOverTpRanksAndStages) {
  // Over all tp ranks and pipeline stages, the counted elements add up to the one-rank model: no tensor split
  // is missed, no replicated tensor or tied copy is counted twice.
  ModelConfig m;
  m.n_layer = 2, m.n_head = 4, m.d_model = 8, m.vocab_size = 16, m.seq_len = 4;
  int64_t whole = 0;
  for (const auto& s : model_tensors(m)) whole += s.numel();
  for (int tp : {1, 2, 4}) {
    for (int stages : {1, 2}) {
      int64_t counted = 0;
      for (int stage = 0; stage < stages; ++stage)
        for (int r = 0; r < tp; ++r) {
          const auto specs = model_tensors(m, Placement{r, tp, stage, stages});
          const auto flags = norm_flags(specs, r);
          for (size_t i = 0; i < specs.size(); ++i) counted += flags[i] ? specs[i].numel() : 0;
        }
      EXPECT_EQ(counted, whole) << "tp " << tp << ", " << stages << " stages";
    }
  }
}

}  // namespace
}  // namespace strata
