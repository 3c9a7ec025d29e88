// Which tensors AdamW decays, for every model kind: from the TensorSpecs the layouts declare (model_tensors), and
// by stepping AdamW with zero gradients, where only weight decay can move a parameter: exactly the decayed
// tensors' elements must change (by the factor 1 - lr * weight_decay), also when the optimizer's range is a ZeRO-1
// shard cutting through tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "kernels/common.hpp"
#include "models/model_factory.hpp"
#include "nn/param_buffer.hpp"
#include "optim/adamw.hpp"

namespace strata {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

struct Kind {
  std::string label;
  ModelConfig config;
  std::function<bool(const std::string&)> decays;  // the expected rule, by tensor name
  std::vector<std::string> decayed, not_decayed;   // names that must be present, in each group
};

std::vector<Kind> kinds() {
  std::vector<Kind> out;
  {
    ModelConfig m;
    m.kind = "gpt";
    m.n_layer = 2, m.n_head = 2, m.d_model = 8, m.vocab_size = 12, m.seq_len = 5;
    // 2-D weights and both embeddings yes; LayerNorm weights and biases, and every bias, no.
    out.push_back(
        {"gpt",
         m,
         [](const std::string& n) {
           return n == "wte" || n == "wpe" || (ends_with(n, ".weight") && !contains(n, "ln_"));
         },
         {"wte", "wpe", "h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.1.mlp.c_fc.weight",
          "h.1.mlp.c_proj.weight"},
         {"h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.bias", "h.1.ln_2.weight",
          "h.1.ln_2.bias", "h.1.mlp.c_fc.bias", "h.1.mlp.c_proj.bias", "ln_f.weight", "ln_f.bias"}});
  }
  {
    ModelConfig m;
    m.kind = "cnn";
    m.channels = {4, 6};
    m.norm = "group", m.norm_groups = 2, m.hidden = 5;
    m.input_shape = {2, 8, 8}, m.num_classes = 3;
    // Convolution and linear weights yes; their biases and GroupNorm's weight and bias no.
    out.push_back({"cnn",
                   m,
                   [](const std::string& n) { return ends_with(n, ".weight") && !contains(n, ".norm."); },
                   {"blocks.0.conv.weight", "blocks.1.conv.weight", "hidden.weight", "head.weight"},
                   {"blocks.0.conv.bias", "blocks.0.norm.weight", "blocks.0.norm.bias", "blocks.1.norm.weight",
                    "hidden.bias", "head.bias"}});
  }
  for (const std::string cell : {"lstm", "gru"}) {
    ModelConfig m;
    m.kind = "lstm";
    m.cell = cell;
    m.n_layer = 2, m.hidden_size = 4, m.hidden = 3;
    m.input_shape = {5, 3}, m.num_classes = 4, m.labels = "sequence";
    // weight_ih / weight_hh and the linear weights yes; every bias no.
    out.push_back(
        {cell,
         m,
         [](const std::string& n) { return contains(n, "weight"); },
         {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1", "hidden.weight",
          "head.weight"},
         {"lstm.bias_ih_l0", "lstm.bias_hh_l0", "lstm.bias_ih_l1", "lstm.bias_hh_l1", "hidden.bias", "head.bias"}});
  }
  return out;
}

const TensorSpec* find(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(WeightDecay, TensorSpecsDecayExactlyTheWeightsOfEveryKind) {
  for (const auto& kind : kinds()) {
    const auto specs = model_tensors(kind.config);
    for (const auto& name : kind.decayed) {
      const TensorSpec* s = find(specs, name);
      ASSERT_NE(s, nullptr) << kind.label << ": no tensor " << name;
      EXPECT_TRUE(s->decay) << kind.label << ": " << name << " is not decayed";
    }
    for (const auto& name : kind.not_decayed) {
      const TensorSpec* s = find(specs, name);
      ASSERT_NE(s, nullptr) << kind.label << ": no tensor " << name;
      EXPECT_FALSE(s->decay) << kind.label << ": " << name << " is decayed";
    }
    for (const auto& s : specs) EXPECT_EQ(s.decay, kind.decays(s.name)) << kind.label << ": " << s.name;
  }
}

TEST(WeightDecay, GptDecayIsTheSameAtEveryPlacement) {
  const Kind gpt = kinds()[0];
  for (int tp : {1, 2})
    for (int stages : {1, 2})
      for (int stage = 0; stage < stages; ++stage)
        for (int r = 0; r < tp; ++r)
          for (const auto& s : model_tensors(gpt.config, Placement{r, tp, stage, stages}))
            EXPECT_EQ(s.decay, gpt.decays(s.name))
                << s.name << " at tp rank " << r << " of " << tp << ", stage " << stage << " of " << stages;
}

// One AdamW<double> step with zero gradients over [begin, end) of a buffer laid out by `specs`; every element
// nonzero beforehand. Checks each element against what weight decay alone does to the tensors `decays` names
// (the expected rule, not the specs' own flags).
void check_one_step(const Kind& kind, const std::string& label, const std::vector<TensorSpec>& specs, int64_t begin,
                    int64_t end) {
  ParamBuffer<double> buffer(specs);
  const int64_t n = int64_t(buffer.size());
  std::vector<double> before(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)  // never 0: decay must show on every decayed element
    before[size_t(i)] = (1.0 + 0.001 * double(i % 997)) * (i % 2 ? -1 : 1);
  {
    auto h = Kokkos::create_mirror_view(buffer.params());
    for (int64_t i = 0; i < n; ++i) h(i) = before[size_t(i)];
    Kokkos::deep_copy(buffer.params(), h);
  }
  TrainConfig train;
  train.weight_decay = 0.1;
  const double lr = 0.05;
  AdamW<double> adamw(train, buffer.specs(), begin, end);
  const Vec<double> zero_grads("zero_grads", size_t(end - begin));
  adamw.step(buffer.params(), zero_grads, lr);
  auto after = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffer.params());
  const double factor = 1.0 - lr * train.weight_decay;
  int64_t changed = 0;
  for (const auto& s : buffer.specs())
    for (int64_t i = s.offset; i < s.offset + s.numel(); ++i) {
      const bool in_range = i >= begin && i < end;
      const double expected = in_range && kind.decays(s.name) ? before[size_t(i)] * factor : before[size_t(i)];
      ASSERT_EQ(after(i), expected) << label << " [" << begin << ", " << end << "): " << s.name << " element "
                                    << i - s.offset << (in_range ? " (in range)" : " (outside the range)");
      changed += after(i) != before[size_t(i)];
    }
  int64_t decayed_in_range = 0;
  for (const auto& s : buffer.specs())
    if (kind.decays(s.name))
      decayed_in_range += std::max<int64_t>(0, std::min(end, s.offset + s.numel()) - std::max(begin, s.offset));
  EXPECT_EQ(changed, decayed_in_range) << label << " [" << begin << ", " << end << ")";
}

TEST(WeightDecay, AdamWWithZeroGradientsChangesExactlyTheDecayedTensors) {
  for (const auto& kind : kinds()) {
    const auto specs = model_tensors(kind.config);
    int64_t n = 0;
    for (const auto& s : specs) n += s.numel();
    check_one_step(kind, kind.label, specs, 0, n);
  }
}

TEST(WeightDecay, Zero1ShardsCuttingThroughTensorsDecayOnlyTheirDecayedPart) {
  for (const auto& kind : kinds()) {
    const auto specs = model_tensors(kind.config);
    ParamBuffer<double> laid_out(specs);
    const int64_t n = int64_t(laid_out.size());
    // Shards of the buffer over 3, 4 and 7 ranks (rarely on a tensor boundary), and ranges that start or end one
    // element inside a tensor, on each side of every boundary.
    for (int ranks : {3, 4, 7}) {
      const int64_t shard = (n + ranks - 1) / ranks;
      for (int r = 0; r < ranks; ++r)
        check_one_step(kind, kind.label + " shard " + std::to_string(r) + "/" + std::to_string(ranks), specs,
                       std::min(n, shard * r), std::min(n, shard * (r + 1)));
    }
    for (const auto& s : laid_out.specs()) {
      if (s.numel() < 3) continue;
      check_one_step(kind, kind.label + " cut into " + s.name, specs, s.offset + 1, n);
      check_one_step(kind, kind.label + " cut into " + s.name, specs, 0, s.offset + s.numel() - 1);
      check_one_step(kind, kind.label + " inside " + s.name, specs, s.offset + 1, s.offset + s.numel() - 1);
    }
  }
}

}  // namespace
}  // namespace strata
