#include "models/lstm_layout.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "nn/stage_balance.hpp"

namespace strata {
namespace {

void check_resolved(const ModelConfig& m) {
  STRATA_CHECK(m.input_shape.size() == 2, "lstm: model.input_shape = {}: expected [T, F] (from the dataset)",
               format_value(m.input_shape));
  STRATA_CHECK(m.num_classes >= 2, "lstm: model.num_classes = {}: expected >= 2 (from the dataset)", m.num_classes);
  STRATA_CHECK(m.labels == "sequence" || m.labels == "step",
               "lstm: model.labels = '{}': expected sequence or step (from the dataset's label shape)", m.labels);
}

int gate_blocks(const ModelConfig& m) { return m.cell == "gru" ? 3 : 4; }

// Forward multiply-adds x 2 per sequence of each layer, and of the head (per step with per-step labels).
std::vector<double> layer_flops(const ModelConfig& m) {
  const double T = double(m.input_shape[0]), G = gate_blocks(m), H = m.hidden_size;
  std::vector<double> f;
  for (int l = 0; l < m.n_layer; ++l) {
    const double in = l == 0 ? double(m.input_shape[1]) : H;
    f.push_back(2.0 * T * G * H * (in + H));
  }
  return f;
}

double head_flops(const ModelConfig& m) {
  const double rows = m.labels == "step" ? double(m.input_shape[0]) : 1.0, H = m.hidden_size;
  return rows * (m.hidden > 0 ? 2.0 * H * m.hidden + 2.0 * m.hidden * m.num_classes : 2.0 * H * m.num_classes);
}

}  // namespace

std::vector<int> lstm_stage_layer_counts(const ModelConfig& m, int stages) {
  check_resolved(m);
  return balanced_stage_counts(layer_flops(m), head_flops(m), stages);
}

LstmLayout lstm_layout(const ModelConfig& m, const Placement& placement) {
  STRATA_CHECK(placement.tp_size == 1, "model.kind = lstm has no tensor-parallel split: parallel.tp = {} must be 1",
               placement.tp_size);
  check_resolved(m);
  const auto counts = lstm_stage_layer_counts(m, placement.stages);
  LstmLayout layout;
  layout.placement = placement;
  layout.steps = int(m.input_shape[0]);
  layout.features = int(m.input_shape[1]);
  layout.hidden = m.hidden_size;
  layout.gates = gate_blocks(m);
  layout.classes = m.num_classes;
  layout.per_step = m.labels == "step";
  for (int s = 0; s < placement.stage; ++s) layout.first_layer += counts[size_t(s)];
  auto add = [&](std::string name, std::vector<int64_t> shape, InitKind init, double std) {
    layout.specs.push_back(tensor_spec(std::move(name), std::move(shape), init, std));
    return int(layout.specs.size() - 1);
  };
  const int64_t H = m.hidden_size, GH = int64_t(layout.gates) * H;
  // PyTorch draws recurrent weights from U(-1/sqrt(H), 1/sqrt(H)); a normal of the same variance.
  const double std = 1.0 / std::sqrt(3.0 * double(H));
  for (int l = layout.first_layer; l < layout.first_layer + counts[size_t(placement.stage)]; ++l) {
    LstmLayout::Layer layer;
    layer.input = l == 0 ? layout.features : int(H);
    layer.w_ih = add(fmt::format("lstm.weight_ih_l{}", l), {GH, layer.input}, InitKind::Normal, std);
    layer.w_hh = add(fmt::format("lstm.weight_hh_l{}", l), {GH, H}, InitKind::Normal, std);
    layer.b_ih = add(fmt::format("lstm.bias_ih_l{}", l), {GH}, InitKind::Zeros, 0);
    layer.b_hh = add(fmt::format("lstm.bias_hh_l{}", l), {GH}, InitKind::Zeros, 0);
    layout.layers.push_back(layer);
  }
  if (placement.last_stage()) {
    int64_t in = H;
    if (m.hidden > 0) {
      layout.hidden_w = add("hidden.weight", {m.hidden, in}, InitKind::Normal, std::sqrt(2.0 / double(in)));
      layout.hidden_b = add("hidden.bias", {m.hidden}, InitKind::Zeros, 0);
      in = m.hidden;
    }
    layout.head_w = add("head.weight", {m.num_classes, in}, InitKind::Normal, 1.0 / std::sqrt(double(in)));
    layout.head_b = add("head.bias", {m.num_classes}, InitKind::Zeros, 0);
  }
  return layout;
}

int64_t lstm_parameters(const ModelConfig& m) {
  int64_t n = 0;
  for (const auto& s : lstm_layout(m).specs) n += s.numel();
  return n;
}

double lstm_flops_per_sample(const ModelConfig& m) {
  check_resolved(m);
  double forward = head_flops(m);
  for (double f : layer_flops(m)) forward += f;
  return 3.0 * forward;
}

}  // namespace strata
