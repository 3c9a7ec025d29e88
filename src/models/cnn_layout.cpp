#include "models/cnn_layout.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "nn/stage_balance.hpp"

namespace strata {
namespace {

// Forward multiply-adds x 2 per image: each block's convolution, the hidden layer and the head.
std::vector<double> block_flops(const std::vector<CnnBlockGeometry>& blocks, int kernel) {
  std::vector<double> f;
  for (const auto& b : blocks) f.push_back(2.0 * b.conv_size() * b.in_c * kernel * kernel);
  return f;
}

double head_flops(const ModelConfig& m, int64_t flat) {
  const double classes = m.num_classes;
  return m.hidden > 0 ? 2.0 * flat * m.hidden + 2.0 * m.hidden * classes : 2.0 * flat * classes;
}

}  // namespace

std::vector<CnnBlockGeometry> cnn_geometry(const ModelConfig& m) {
  STRATA_CHECK(m.input_shape.size() == 3, "cnn: model.input_shape = {}: expected [C, H, W] (from the dataset)",
               format_value(m.input_shape));
  STRATA_CHECK(m.num_classes >= 2, "cnn: model.num_classes = {}: expected >= 2 (from the dataset)", m.num_classes);
  std::vector<CnnBlockGeometry> out;
  int c = int(m.input_shape[0]), h = int(m.input_shape[1]), w = int(m.input_shape[2]);
  const int k = m.kernel_size, p = m.padding >= 0 ? m.padding : m.kernel_size / 2, s = m.conv_stride;
  for (size_t i = 0; i < m.channels.size(); ++i) {
    CnnBlockGeometry g;
    g.in_c = c, g.in_h = h, g.in_w = w, g.padding = p;
    g.out_c = int(m.channels[i]);
    g.conv_h = (h + 2 * p - k) / s + 1;
    g.conv_w = (w + 2 * p - k) / s + 1;
    STRATA_CHECK(h + 2 * p >= k && w + 2 * p >= k,
                 "model.input_shape = {}: conv block {} gets a {} x {} image, smaller than model.kernel_size = {} with "
                 "padding {} (use fewer model.channels, or pooling \"none\")",
                 format_value(m.input_shape), i, h, w, k, p);
    g.out_h = g.conv_h, g.out_w = g.conv_w;
    if (m.pool != "none") {
      STRATA_CHECK(g.conv_h >= m.pool_size && g.conv_w >= m.pool_size,
                   "model.input_shape = {}: conv block {} outputs {} x {}, smaller than model.pool_size = {} (use "
                   "fewer model.channels, a smaller pool_size, or pool = \"none\")",
                   format_value(m.input_shape), i, g.conv_h, g.conv_w, m.pool_size);
      g.out_h = (g.conv_h - m.pool_size) / m.pool_size + 1;
      g.out_w = (g.conv_w - m.pool_size) / m.pool_size + 1;
    }
    out.push_back(g);
    c = g.out_c, h = g.out_h, w = g.out_w;
  }
  return out;
}

std::vector<int> cnn_stage_layer_counts(const ModelConfig& m, int stages) {
  const auto blocks = cnn_geometry(m);
  return balanced_stage_counts(block_flops(blocks, m.kernel_size), head_flops(m, blocks.back().output_size()), stages);
}

void check_cnn_tensor_parallel(const ModelConfig& m, int tp, const std::string& source) {
  if (tp == 1) return;
  for (size_t i = 0; i < m.channels.size(); i += 2)
    STRATA_CHECK(m.channels[i] % tp == 0,
                 "{}: parallel.tp = {}: model.channels = {}: blocks 0, 2, 4, ... split their output channels over the "
                 "tensor-parallel ranks, so each of those counts must be a multiple of {}",
                 source, tp, format_value(m.channels), tp);
  STRATA_CHECK(m.norm != "group" || m.norm_groups % tp == 0,
               "{}: parallel.tp = {}: model.norm_groups = {} must be a multiple of {} (each rank normalizes whole "
               "groups of its channels)",
               source, tp, m.norm_groups, tp);
}

CnnLayout cnn_layout(const ModelConfig& m, const Placement& placement) {
  check_cnn_tensor_parallel(m, placement.tp_size, "cnn_layout");
  const auto all = cnn_geometry(m);
  const auto counts = cnn_stage_layer_counts(m, placement.stages);
  const int tp = placement.tp_size, tp_rank = placement.tp_rank;
  CnnLayout layout;
  layout.placement = placement;
  layout.classes = m.num_classes;
  for (int s = 0; s < placement.stage; ++s) layout.first_block += counts[size_t(s)];
  enum Split { Replicated = -1, Rows = 0, Cols = 1 };
  // A tensor at its global shape, split over the tp ranks along rows (dim 0) or the flattened trailing dims.
  auto add = [&](std::string name, std::vector<int64_t> global, InitKind init, double std, Split split = Replicated) {
    layout.specs.push_back(tensor_spec(std::move(name), std::move(global), init, std, split, tp_rank, tp));
    return int(layout.specs.size() - 1);
  };
  const int k = m.kernel_size;
  for (int i = layout.first_block; i < layout.first_block + counts[size_t(placement.stage)]; ++i) {
    const CnnBlockGeometry& g = all[size_t(i)];
    CnnLayout::Block b;
    b.g = g;
    // Megatron's pairing: even blocks split their output channels (column-parallel), odd blocks read those split
    // channels and sum their partial outputs (row-parallel). With one tp rank both are the plain convolution.
    b.column = i % 2 == 0;
    b.in_local = b.column ? g.in_c : g.in_c / tp;
    b.out_local = b.column ? g.out_c / tp : g.out_c;
    const double fan_in = double(g.in_c) * k * k;
    // He initialization for ReLU-like activations: std = sqrt(2 / fan_in).
    b.conv_w = add(fmt::format("blocks.{}.conv.weight", i), {g.out_c, g.in_c, k, k}, InitKind::Normal,
                   std::sqrt(2.0 / fan_in), b.column ? Rows : Cols);
    b.conv_b = add(fmt::format("blocks.{}.conv.bias", i), {g.out_c}, InitKind::Zeros, 0, b.column ? Rows : Replicated);
    if (m.norm == "group") {
      b.norm_w =
          add(fmt::format("blocks.{}.norm.weight", i), {g.out_c}, InitKind::Ones, 0, b.column ? Rows : Replicated);
      b.norm_b =
          add(fmt::format("blocks.{}.norm.bias", i), {g.out_c}, InitKind::Zeros, 0, b.column ? Rows : Replicated);
    }
    layout.blocks.push_back(b);
  }
  layout.flat = all.back().output_size();
  layout.input_size = all.front().input_size();
  // After an odd number of blocks the last one's channels are split: the first head layer is row-parallel.
  layout.head_row_parallel = all.size() % 2 == 1;
  if (placement.last_stage()) {
    int64_t in = layout.flat;
    const Split first = layout.head_row_parallel ? Cols : Replicated;
    if (m.hidden > 0) {
      layout.hidden_w = add("hidden.weight", {m.hidden, in}, InitKind::Normal, std::sqrt(2.0 / double(in)), first);
      layout.hidden_b = add("hidden.bias", {m.hidden}, InitKind::Zeros, 0);
      in = m.hidden;
    }
    layout.head_w = add("head.weight", {m.num_classes, in}, InitKind::Normal, 1.0 / std::sqrt(double(in)),
                        m.hidden > 0 ? Replicated : first);
    layout.head_b = add("head.bias", {m.num_classes}, InitKind::Zeros, 0);
  }
  return layout;
}

int64_t cnn_parameters(const ModelConfig& m) {
  int64_t n = 0;
  for (const auto& s : cnn_layout(m).specs) n += s.global_numel();
  return n;
}

double cnn_flops_per_sample(const ModelConfig& m) {
  const auto blocks = cnn_geometry(m);
  double forward = head_flops(m, blocks.back().output_size());
  for (double f : block_flops(blocks, m.kernel_size)) forward += f;
  return 3.0 * forward;  // backward: twice the forward (input and weight gradients)
}

}  // namespace strata
