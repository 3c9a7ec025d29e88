#include "models/gpt_layout.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"

namespace strata {

void check_tensor_parallel_split(const ModelConfig& m, int tp, const std::string& source) {
  STRATA_CHECK(m.n_head % tp == 0, "{}: model.n_head = {} does not split over parallel.tp = {} ranks", source, m.n_head,
               tp);
  STRATA_CHECK(gpt_mlp_width(m) % tp == 0,
               "{}: the MLP's {} hidden units (model.d_mlp) do not split over parallel.tp = {} ranks", source,
               gpt_mlp_width(m), tp);
  STRATA_CHECK(m.vocab_size % tp == 0,
               "{}: model.vocab_size = {} does not split over parallel.tp = {} ranks (pad the vocabulary to a "
               "multiple of {})",
               source, m.vocab_size, tp, tp);
}

std::vector<int> gpt_stage_layer_counts(const ModelConfig& m, int stages) {
  STRATA_CHECK(stages >= 1 && stages <= m.n_layer, "pipeline: {} stages for {} layers (each stage needs a layer)",
               stages, m.n_layer);
  if (stages == 1) return {m.n_layer};
  const double C = m.d_model, T = m.seq_len, V = m.vocab_size;
  const double A = double(gpt_attention_width(m)), F = double(gpt_mlp_width(m));
  // Forward FLOPs per token: 2 x (q|k|v, proj and MLP weights) + attention over T positions; the head's matrix.
  const double block = 2 * (4 * C * A + 2 * C * F) + 4 * T * A, head = 2 * C * V;
  const int others = stages - 1;
  // Smallest largest stage; among equals, the smallest gap between the largest and the smallest stage.
  int best_last = 1;
  std::pair<double, double> best{0, 0};
  for (int last = 1; last <= m.n_layer - others; ++last) {
    const int rest = m.n_layer - last;
    const double last_cost = last * block + head;
    const double longest = std::max(last_cost, ((rest + others - 1) / others) * block);
    const double shortest = std::min(last_cost, (rest / others) * block);
    const std::pair<double, double> cost{longest, longest - shortest};
    if (last == 1 || cost < best) best_last = last, best = cost;
  }
  std::vector<int> counts;
  const int rest = m.n_layer - best_last;
  for (int s = 0; s < others; ++s) counts.push_back(rest / others + (s < rest % others ? 1 : 0));
  counts.push_back(best_last);
  return counts;
}

std::pair<int, int> stage_layers(const ModelConfig& m, int stage, int stages) {
  const std::vector<int> counts = gpt_stage_layer_counts(m, stages);
  int first = 0;
  for (int s = 0; s < stage; ++s) first += counts[size_t(s)];
  return {first, counts[size_t(stage)]};
}

GptLayout gpt_layout(const ModelConfig& m, int tp_rank, int tp_size, int stage, int stages) {
  check_tensor_parallel_split(m, tp_size, "gpt_layout");
  STRATA_CHECK(stages >= 1 && stages <= m.n_layer && stage >= 0 && stage < stages,
               "gpt_layout: stage {} of {} for {} layers", stage, stages, m.n_layer);
  GptLayout layout;
  layout.stage = stage;
  layout.stages = stages;
  const int64_t C = m.d_model, V = m.vocab_size, Tn = m.seq_len;
  const int64_t A = gpt_attention_width(m), F = gpt_mlp_width(m);
  const double std = 0.02;
  // Residual projections are scaled down by sqrt(2 * n_layer), as in GPT-2.
  const double proj_std = std / std::sqrt(2.0 * m.n_layer);
  enum Split { Replicated = -1, Rows = 0, Cols = 1 };
  auto add = [&](std::string name, std::vector<int64_t> global, InitKind init, double s, Split split = Replicated,
                 int blocks = 1) {
    layout.specs.push_back(tensor_spec(std::move(name), std::move(global), init, s, split, tp_rank, tp_size, blocks));
    return int(layout.specs.size() - 1);
  };
  if (layout.first_stage() || layout.last_stage()) {
    layout.wte = add("wte", {V, C}, InitKind::Normal, std, Rows);  // vocab-parallel
    // The input embedding (first stage) is also the output head (last stage): two copies when they differ.
    layout.specs.back().tied = stages > 1;
    layout.specs.back().tied_copy = stages > 1 && !layout.first_stage();
    layout.specs.back().embedding = true;
  }
  if (layout.first_stage()) {
    layout.wpe = add("wpe", {Tn, C}, InitKind::Normal, 0.01);
    layout.specs.back().embedding = true;
  }
  const auto [first_layer, n_layers] = stage_layers(m, stage, stages);
  layout.first_layer = first_layer;
  for (int l = first_layer; l < first_layer + n_layers; ++l) {
    auto n = [&](const char* suffix) { return fmt::format("h.{}.{}", l, suffix); };
    BlockParams b{};
    b.ln1_w = add(n("ln_1.weight"), {C}, InitKind::Ones, 0);
    b.ln1_b = add(n("ln_1.bias"), {C}, InitKind::Zeros, 0);
    b.qkv_w = add(n("attn.c_attn.weight"), {3 * A, C}, InitKind::Normal, std, Rows, 3);
    b.qkv_b = add(n("attn.c_attn.bias"), {3 * A}, InitKind::Zeros, 0, Rows, 3);
    b.attn_proj_w = add(n("attn.c_proj.weight"), {C, A}, InitKind::Normal, proj_std, Cols);
    b.attn_proj_b = add(n("attn.c_proj.bias"), {C}, InitKind::Zeros, 0);
    b.ln2_w = add(n("ln_2.weight"), {C}, InitKind::Ones, 0);
    b.ln2_b = add(n("ln_2.bias"), {C}, InitKind::Zeros, 0);
    b.fc_w = add(n("mlp.c_fc.weight"), {F, C}, InitKind::Normal, std, Rows);
    b.fc_b = add(n("mlp.c_fc.bias"), {F}, InitKind::Zeros, 0, Rows);
    b.mlp_proj_w = add(n("mlp.c_proj.weight"), {C, F}, InitKind::Normal, proj_std, Cols);
    b.mlp_proj_b = add(n("mlp.c_proj.bias"), {C}, InitKind::Zeros, 0);
    layout.blocks.push_back(b);
  }
  if (layout.last_stage()) {
    layout.lnf_w = add("ln_f.weight", {C}, InitKind::Ones, 0);
    layout.lnf_b = add("ln_f.bias", {C}, InitKind::Zeros, 0);
  }
  return layout;
}

int64_t gpt_attention_width(const ModelConfig& m) {
  return int64_t(m.n_head) * (m.d_head > 0 ? m.d_head : m.d_model / m.n_head);
}

int64_t gpt_mlp_width(const ModelConfig& m) { return m.d_mlp > 0 ? m.d_mlp : 4 * int64_t(m.d_model); }

int64_t non_embedding_params(const ModelConfig& m) {
  const int64_t C = m.d_model, A = gpt_attention_width(m), F = gpt_mlp_width(m);
  const int64_t per_block = 2 * C + (3 * A * C + 3 * A) + (C * A + C) + 2 * C + (F * C + F) + (C * F + C);
  return m.n_layer * per_block + 2 * C;
}

}  // namespace strata
