// Pipeline stage boundaries (models/gpt_layout.hpp): balanced by forward FLOPs with the LM head on the last stage.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.hpp"
#include "models/gpt_layout.hpp"

namespace strata {
namespace {

ModelConfig model(int n_layer, int d_model, int vocab, int seq_len) {
  ModelConfig m;
  m.n_layer = n_layer;
  m.n_head = 2;
  m.d_model = d_model;
  m.vocab_size = vocab;
  m.seq_len = seq_len;
  return m;
}

// The largest stage cost of a split, in the cost model's units (forward FLOPs per token).
double largest_stage(const ModelConfig& m, const std::vector<int>& counts) {
  const double C = m.d_model, T = m.seq_len, V = m.vocab_size, block = 24 * C * C + 4 * T * C;
  double worst = 0;
  for (size_t s = 0; s < counts.size(); ++s)
    worst = std::max(worst, counts[s] * block + (s + 1 == counts.size() ? 2 * C * V : 0));
  return worst;
}

TEST(StageSplit, TheLmHeadMovesLayersToEarlierStages) {
  // perf's "small": a block is 3.9 MFLOP per token, the head (384 x 8192) 6.3: 1.6 blocks.
  EXPECT_EQ(gpt_stage_layer_counts(model(6, 384, 8192, 256), 2), (std::vector<int>{4, 2}));
  // GPT-2 124M at T 1024: a block is 17.3 MFLOP per token, the head 77.3 (4.5 blocks).
  EXPECT_EQ(gpt_stage_layer_counts(model(12, 768, 50304, 1024), 2), (std::vector<int>{8, 4}));
  EXPECT_EQ(gpt_stage_layer_counts(model(12, 768, 50304, 1024), 4), (std::vector<int>{4, 4, 3, 1}));
  // A negligible head leaves an even split, the earlier stages one layer longer.
  EXPECT_EQ(gpt_stage_layer_counts(model(7, 512, 16, 64), 3), (std::vector<int>{3, 2, 2}));
  EXPECT_EQ(gpt_stage_layer_counts(model(5, 64, 258, 32), 1), (std::vector<int>{5}));
}

TEST(StageSplit, NoOtherSplitHasASmallerLargestStage) {
  for (int n_layer : {2, 3, 5, 8, 12})
    for (int stages = 1; stages <= std::min(n_layer, 4); ++stages)
      for (int vocab : {16, 4096, 50304}) {
        const ModelConfig m = model(n_layer, 256, vocab, 128);
        const auto counts = gpt_stage_layer_counts(m, stages);
        ASSERT_EQ(int(counts.size()), stages);
        ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), 0), n_layer);
        ASSERT_GE(*std::min_element(counts.begin(), counts.end()), 1);
        // Every split of n_layer into `stages` non-empty parts (compositions, enumerated by bit masks of cuts).
        double best = 1e300;
        for (int mask = 0; mask < (1 << (n_layer - 1)); ++mask) {
          if (__builtin_popcount(unsigned(mask)) != stages - 1) continue;
          std::vector<int> split;
          int run = 1;
          for (int i = 0; i < n_layer - 1; ++i) {
            if (mask & (1 << i)) split.push_back(run), run = 0;
            ++run;
          }
          split.push_back(run);
          best = std::min(best, largest_stage(m, split));
        }
        EXPECT_DOUBLE_EQ(largest_stage(m, counts), best)
            << n_layer << " layers, " << stages << " stages, vocab " << vocab;
      }
}

TEST(StageSplit, LayersAreContiguousAndCoverTheModel) {
  const ModelConfig m = model(12, 768, 50304, 1024);
  int next = 0;
  for (int s = 0; s < 4; ++s) {
    const auto [first, count] = stage_layers(m, s, 4);
    EXPECT_EQ(first, next);
    next += count;
    const GptLayout layout = gpt_layout(m, 0, 1, s, 4);
    EXPECT_EQ(layout.first_layer, first);
    EXPECT_EQ(int(layout.blocks.size()), count);
  }
  EXPECT_EQ(next, 12);
  EXPECT_THROW(gpt_stage_layer_counts(model(2, 64, 258, 32), 3), Error);
}

}  // namespace
}  // namespace strata
