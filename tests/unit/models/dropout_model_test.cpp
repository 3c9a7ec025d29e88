// Dropout in the models (GPT, CNN, LSTM): a microbatch whose DropoutContext is off (evaluation) or a rate of 0
// computes exactly what a model without dropout does; a training microbatch drops, differently at another step or
// another place in the global batch; and the per-site rates resolve from train.dropout. The values themselves are
// checked against the PyTorch twins (tests/reference) and across layouts (tests/e2e).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "models/model_factory.hpp"

namespace strata {
namespace {

constexpr int kBatch = 3;

ModelConfig model_of(const std::string& kind) {
  ModelConfig m;
  m.kind = kind;
  if (kind == "gpt") {
    m.n_layer = 2, m.n_head = 2, m.d_model = 16, m.vocab_size = 23, m.seq_len = 7;
  } else if (kind == "cnn") {
    m.channels = {4, 4}, m.norm_groups = 2, m.hidden = 6, m.input_shape = {1, 8, 8}, m.num_classes = 3;
  } else {
    m.n_layer = 2, m.hidden_size = 5, m.hidden = 4, m.input_shape = {4, 3}, m.num_classes = 3, m.labels = "step";
  }
  return m;
}

struct Pass {
  float loss;
  std::vector<float> grads;
};

// Loss and gradients of one forward/backward with `rates` and `context`, on fixed weights and inputs.
Pass run(const std::string& kind, const DropoutRates& rates, const DropoutContext& context) {
  const ModelConfig m = model_of(kind);
  auto params = std::make_shared<ParamBuffer<float>>(model_tensors(m));
  params->initialize(3);
  TensorParallel<float> no_tp;
  auto model = make_model<float>(m, kBatch, params, {}, no_tp);
  model->set_dropout(rates);
  MicroBatch<float> batch = model->allocate_batch();
  std::mt19937 gen(9);
  std::normal_distribution<float> normal;
  auto fill = [&](auto view, int64_t modulo) {
    auto host = Kokkos::create_mirror_view(view);
    using E = typename decltype(host)::value_type;
    for (size_t i = 0; i < host.extent(0); ++i) host(i) = modulo > 0 ? E(gen() % uint64_t(modulo)) : E(normal(gen));
    Kokkos::deep_copy(view, host);
  };
  if (batch.tokens.extent(0) > 0) fill(batch.tokens, m.vocab_size);
  if (batch.features.extent(0) > 0) fill(batch.features, 0);
  fill(batch.targets, model->classes());
  batch.dropout = context;
  params->zero_grads();
  const float loss = model->forward(batch);
  model->backward();
  auto g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params->grads());
  return {loss, std::vector<float>(g.data(), g.data() + g.extent(0))};
}

DropoutRates rates_of(const std::string& kind, double p) {
  TrainConfig t;
  t.dropout = p;
  return dropout_rates(model_of(kind), t);
}

class DropoutModel : public ::testing::TestWithParam<std::string> {};

TEST_P(DropoutModel, OffInEvaluationAndAtRateZero) {
  const std::string kind = GetParam();
  const Pass plain = run(kind, {}, {});
  const DropoutContext training{true, 42, 5, 0};
  for (const Pass& same : {run(kind, rates_of(kind, 0.3), DropoutContext{}), run(kind, rates_of(kind, 0), training)}) {
    EXPECT_EQ(same.loss, plain.loss);
    EXPECT_EQ(same.grads, plain.grads);
  }
}

TEST_P(DropoutModel, TrainingDropsByStepAndSample) {
  const std::string kind = GetParam();
  const Pass plain = run(kind, {}, {});
  const DropoutRates rates = rates_of(kind, 0.3);
  const Pass dropped = run(kind, rates, {true, 42, 5, 0});
  EXPECT_NE(dropped.loss, plain.loss);
  EXPECT_NE(dropped.grads, plain.grads);
  // The same key again gives the same masks; another step, sample offset or seed other ones.
  const Pass again = run(kind, rates, {true, 42, 5, 0});
  EXPECT_EQ(again.loss, dropped.loss);
  EXPECT_EQ(again.grads, dropped.grads);
  for (const DropoutContext& other :
       {DropoutContext{true, 42, 6, 0}, DropoutContext{true, 42, 5, kBatch}, DropoutContext{true, 43, 5, 0}})
    EXPECT_NE(run(kind, rates, other).grads, dropped.grads);
}

INSTANTIATE_TEST_SUITE_P(Kinds, DropoutModel, ::testing::Values("gpt", "cnn", "lstm"));

TEST(DropoutRates, GptSitesOverrideTrainDropoutClassifiersUseIt) {
  TrainConfig t;
  t.dropout = 0.1;
  t.attention_dropout = 0.25;
  t.residual_dropout = 0;
  const DropoutRates gpt = dropout_rates(model_of("gpt"), t);
  EXPECT_EQ(gpt.embedding, 0.1);
  EXPECT_EQ(gpt.attention, 0.25);
  EXPECT_EQ(gpt.residual, 0.0);
  EXPECT_EQ(gpt.hidden, 0.0);
  for (const char* kind : {"cnn", "lstm"}) {
    const DropoutRates r = dropout_rates(model_of(kind), t);
    EXPECT_EQ(r.hidden, 0.1);
    EXPECT_EQ(r.embedding + r.attention + r.residual, 0.0);
  }
  EXPECT_FALSE(dropout_rates(model_of("gpt"), TrainConfig{}).any());
}

}  // namespace
}  // namespace strata
