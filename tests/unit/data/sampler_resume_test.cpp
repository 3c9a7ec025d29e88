// The sample order is a pure function of (seed, epoch, global position): a run stopped after k steps and resumed
// from "consumed samples" alone, on any data-parallel size (and even another batch size), reads exactly the
// samples an uninterrupted one-rank run would have read next.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "data/batch_sampler.hpp"
#include "data/prefetcher.hpp"

namespace strata::data {
namespace {

// The global sequence of samples steps [first, last) read, concatenated over the dp ranks in rank order.
std::vector<int64_t> read_by_ranks(const BatchSampler& s, int64_t consumed, int global_batch, int dp, int64_t steps) {
  std::vector<int64_t> seq;
  for (int64_t step = 0; step < steps; ++step)
    for (int r = 0; r < dp; ++r) {
      auto part = s.rank_batch(consumed + step * global_batch, global_batch, dp, r);
      seq.insert(seq.end(), part.begin(), part.end());
    }
  return seq;
}

TEST(SamplerResume, AnyDpSizeContinuesTheSameSequence) {
  const int64_t n = 37;  // not a multiple of any batch: batches straddle epochs
  const int B = 12;
  BatchSampler one_rank(n, B, /*shuffle=*/true, 99);
  const auto uninterrupted = read_by_ranks(one_rank, 0, B, 1, 20);
  ASSERT_EQ(uninterrupted.size(), 240u);
  for (int k : {0, 1, 3, 7}) {
    for (int dp_before : {1, 2, 4}) {
      BatchSampler before(n, B, true, 99);
      const auto first = read_by_ranks(before, 0, B, dp_before, k);
      const int64_t consumed = int64_t(k) * B;  // all a checkpoint needs to store
      for (int dp_after : {1, 2, 3, 4, 6, 12}) {
        BatchSampler after(n, B, true, 99);  // a fresh process: no state carried over
        auto seq = first;
        const auto rest = read_by_ranks(after, consumed, B, dp_after, 20 - k);
        seq.insert(seq.end(), rest.begin(), rest.end());
        EXPECT_EQ(seq, uninterrupted) << "k " << k << ", dp " << dp_before << " -> " << dp_after;
      }
    }
  }
}

TEST(SamplerResume, ANewBatchSizeContinuesFromConsumedSamples) {
  BatchSampler s(50, 8, true, 5);
  std::vector<int64_t> expected;
  for (int64_t g = 0; g < 200; ++g) expected.push_back(s.sample_at(g));
  // 5 steps of 8, then batches of 10 on 5 ranks: positions 40.. continue the same order.
  auto seq = read_by_ranks(s, 0, 8, 2, 5);
  const auto rest = read_by_ranks(s, 40, 10, 5, 16);
  seq.insert(seq.end(), rest.begin(), rest.end());
  EXPECT_EQ(seq, expected);
}

TEST(SamplerResume, EachEpochIsAPermutationAndEpochsDiffer) {
  const int64_t n = 64;
  BatchSampler s(n, 16, true, 7);
  std::vector<int64_t> e0, e1;
  for (int64_t g = 0; g < n; ++g) e0.push_back(s.sample_at(g));
  for (int64_t g = n; g < 2 * n; ++g) e1.push_back(s.sample_at(g));
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(e0[size_t(i)], i);
  EXPECT_EQ(e0, e1);
  // Another seed gives another order; no shuffle gives the identity.
  BatchSampler other(n, 16, true, 8), plain(n, 16, false, 7);
  int same = 0;
  for (int64_t g = 0; g < n; ++g) same += other.sample_at(g) == s.sample_at(g);
  EXPECT_LT(same, 10);
  for (int64_t g = 0; g < 3 * n; ++g) EXPECT_EQ(plain.sample_at(g), g % n);
}

TEST(SamplerResume, RejectsBatchesThatDoNotSplit) {
  BatchSampler s(10, 4, true, 1);
  EXPECT_THROW(s.rank_batch(0, 10, 4, 0), std::exception);
  EXPECT_THROW(s.rank_batch(0, 8, 4, 4), std::exception);
  EXPECT_THROW(s.rank_batch(-1, 8, 4, 0), std::exception);
}

struct Numbers {
  std::vector<int64_t> v;
};

TEST(Prefetcher, DeliversEveryStepInOrderLikeTheSynchronousReader) {
  auto fill = [](int64_t step, Numbers& out) {
    for (size_t i = 0; i < out.v.size(); ++i) out.v[i] = step * 1000 + int64_t(i);
  };
  for (int depth : {0, 1, 2, 5}) {
    Prefetcher<Numbers> p(fill, Numbers{std::vector<int64_t>(7)}, /*first_step=*/3, depth);
    for (int64_t step = 3; step < 40; ++step) {
      const Numbers& b = p.next();
      ASSERT_EQ(b.v.size(), 7u);
      for (size_t i = 0; i < 7; ++i) ASSERT_EQ(b.v[i], step * 1000 + int64_t(i)) << "depth " << depth;
    }
  }
}

TEST(Prefetcher, ReadsAheadWhileTheLoopWorksAndMeasuresTheWait) {
  // Reading takes 20 ms and the loop works 30 ms per step: with prefetch the loop barely waits after the first
  // batch; without it, it waits the full 20 ms every step.
  auto slow_fill = [](int64_t step, Numbers& out) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out.v[0] = step;
  };
  for (int depth : {0, 2}) {
    Prefetcher<Numbers> p(slow_fill, Numbers{std::vector<int64_t>(1)}, 0, depth);
    std::vector<double> waits;
    for (int step = 0; step < 8; ++step) {
      EXPECT_EQ(p.next().v[0], step);
      waits.push_back(p.last_wait_ms());
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    std::sort(waits.begin() + 1, waits.end());
    const double median_after_first = waits[4];
    if (depth == 0)
      EXPECT_GT(median_after_first, 15.0);
    else
      EXPECT_LT(median_after_first, 5.0);
    EXPECT_GT(p.total_wait_ms(), 15.0);  // the first batch is always waited for
  }
}

TEST(Prefetcher, AnErrorWhileReadingReachesTheLoopAtThatStep) {
  auto fill = [](int64_t step, Numbers& out) {
    if (step == 4) throw std::runtime_error("shard 3 is corrupt");
    out.v[0] = step;
  };
  Prefetcher<Numbers> p(fill, Numbers{std::vector<int64_t>(1)}, 0, 3);
  for (int step = 0; step < 4; ++step) EXPECT_EQ(p.next().v[0], step);
  try {
    p.next();
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "shard 3 is corrupt");
  }
}

}  // namespace
}  // namespace strata::data
