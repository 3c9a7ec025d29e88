// The pruning schedule and selection (train/pruning.hpp): the cubic schedule against its formula (Zhu & Gupta 2017,
// s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3), the steps that update masks, which tensors are pruned, and the
// config's checks of prune.* (one line naming the field). The selection on split tensors is tests/mpi/pruning_test.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "models/gpt_layout.hpp"
#include "train/pruning.hpp"

namespace strata {
namespace {

TEST(PruneSchedule, FollowsTheCubicFormula) {
  PruneConfig c;
  c.sparsity = 0.9;
  c.initial_sparsity = 0.2;
  c.start_step = 10;
  c.end_step = 50;
  c.every = 7;
  const PruneSchedule s = prune_schedule(c, 100);
  for (int64_t t = 0; t <= 100; ++t) {
    double expected = 0;
    if (t >= 10) expected = t >= 50 ? 0.9 : 0.9 + (0.2 - 0.9) * std::pow(1.0 - (t - 10) / 40.0, 3);
    EXPECT_NEAR(s.sparsity_at(t), expected, 1e-15) << t;
  }
  std::vector<int64_t> updates;
  for (int64_t t = 0; t <= 100; ++t)
    if (s.updates_at(t)) updates.push_back(t);
  EXPECT_EQ(updates, (std::vector<int64_t>{10, 17, 24, 31, 38, 45, 50}));
}

TEST(PruneSchedule, DefaultsEndAtThreeQuartersAndOffWithoutSparsity) {
  PruneConfig c;
  c.sparsity = 0.5;
  EXPECT_EQ(prune_schedule(c, 200).end, 150);
  EXPECT_DOUBLE_EQ(prune_schedule(c, 200).sparsity_at(0), 0.0);  // initial 0 at step 0
  EXPECT_DOUBLE_EQ(prune_schedule(c, 200).sparsity_at(150), 0.5);
  c.sparsity = 0;
  for (int64_t t = 0; t < 200; ++t) EXPECT_FALSE(prune_schedule(c, 200).updates_at(t));
  PruneConfig one_shot;
  one_shot.sparsity = 0.7;
  one_shot.initial_sparsity = 0.7;
  one_shot.start_step = one_shot.end_step = 0;
  EXPECT_TRUE(prune_schedule(one_shot, 10).updates_at(0));
  EXPECT_DOUBLE_EQ(prune_schedule(one_shot, 10).sparsity_at(0), 0.7);
  EXPECT_FALSE(prune_schedule(one_shot, 10).updates_at(1));
}

TEST(Prunable, WeightsButNotEmbeddingsNormsOrBiasesUnlessAll) {
  ModelConfig m;
  m.n_layer = 1;
  m.n_head = 2;
  m.d_model = 8;
  m.vocab_size = 11;
  m.seq_len = 4;
  std::vector<std::string> weights, all;
  for (const auto& s : gpt_layout(m).specs) {
    if (prunable(s, "weights")) weights.push_back(s.name);
    if (prunable(s, "all")) all.push_back(s.name);
  }
  EXPECT_EQ(weights, (std::vector<std::string>{"h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight",
                                               "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"}));
  EXPECT_EQ(all.size(), weights.size() + 2);  // wte and wpe
}

std::string config_error(const std::vector<std::string>& overrides) {
  try {
    load_config("", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PruneConfig, BadSettingsGetOneLineNamingTheField) {
  EXPECT_NE(config_error({"prune.sparsity=1.0"}).find("prune.sparsity = 1: expected in [0, 1)"), std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=-0.1"}).find("prune.sparsity"), std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=0.5", "prune.initial_sparsity=0.6"}).find("prune.initial_sparsity = 0.6"),
            std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=0.5", "prune.scope=rows"}).find("prune.scope = 'rows'"), std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=0.5", "prune.every=0"}).find("prune.every = 0"), std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=0.5", "train.steps=100", "prune.end_step=101"}).find("prune.end_step = 101"),
            std::string::npos);
  EXPECT_NE(config_error({"prune.sparsity=0.5", "prune.tensors=biases"}).find("prune.tensors"), std::string::npos);
  EXPECT_EQ(config_error({"prune.sparsity=0.5", "prune.scope=layer", "prune.tensors=all"}), "");
}

}  // namespace
}  // namespace strata
