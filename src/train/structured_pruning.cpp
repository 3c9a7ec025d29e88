#include "train/structured_pruning.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "models/cnn_layout.hpp"
#include "models/gpt_layout.hpp"
#include "models/lstm_layout.hpp"

namespace strata {
namespace {

std::vector<float>& tensor(HostTensors& t, const std::string& name, size_t expected) {
  auto it = t.find(name);
  STRATA_CHECK(it != t.end(), "strata prune: the weights have no tensor '{}'", name);
  STRATA_CHECK(it->second.size() == expected, "strata prune: tensor '{}' holds {} values, expected {}", name,
               it->second.size(), expected);
  return it->second;
}

// The L1 norm of each of the given rows of a [rows, cols] matrix, summed per structure: structure s owns rows
// rows_of(s) (several for a recurrent unit: one per gate).
template <class RowsOf>
std::vector<double> l1_scores(const std::vector<float>& m, int64_t cols, int64_t structures, RowsOf rows_of) {
  std::vector<double> score(size_t(structures), 0.0);
  for (int64_t s = 0; s < structures; ++s)
    for (int64_t r : rows_of(s))
      for (int64_t c = 0; c < cols; ++c) score[size_t(s)] += std::fabs(double(m[size_t(r * cols + c)]));
  return score;
}

// The indices (ascending) of the `keep` highest scores among `candidates`; ties keep the lower index.
std::vector<int64_t> keep_highest(const std::vector<double>& score, std::vector<int64_t> candidates, int64_t keep) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](int64_t a, int64_t b) { return score[size_t(a)] > score[size_t(b)]; });
  candidates.resize(size_t(keep));
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t(0));
  return v;
}

// The kept rows of a [rows, row_size] tensor (row_size: the elements of one row, e.g. in_c * k * k).
std::vector<float> take_rows(const std::vector<float>& m, int64_t row_size, const std::vector<int64_t>& rows) {
  std::vector<float> out;
  out.reserve(rows.size() * size_t(row_size));
  for (int64_t r : rows) out.insert(out.end(), m.begin() + r * row_size, m.begin() + (r + 1) * row_size);
  return out;
}

// The kept column blocks of a [rows, cols * block] tensor: column c's `block` contiguous elements of each row (a
// conv kernel's k * k taps, a flattened channel's H * W positions).
std::vector<float> take_cols(const std::vector<float>& m, int64_t rows, int64_t cols, int64_t block,
                             const std::vector<int64_t>& kept) {
  std::vector<float> out;
  out.reserve(size_t(rows) * kept.size() * size_t(block));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c : kept) {
      const auto from = m.begin() + (r * cols + c) * block;
      out.insert(out.end(), from, from + block);
    }
  return out;
}

// How many of n structures stay when `fraction` of them go (at least one).
int64_t kept_of(int64_t n, double fraction) { return std::max<int64_t>(1, n - std::llround(fraction * double(n))); }

void check_fraction(const char* option, double f, bool applies, const std::string& kind) {
  STRATA_CHECK(f >= 0 && f < 1, "strata prune: {} = {}: expected a fraction in [0, 1)", option, f);
  STRATA_CHECK(f == 0 || applies, "strata prune: {} does not apply to model.kind = {}", option, kind);
}

// The hidden layer (model.hidden units; its input `in` columns, blocks of `block`): the kept units' rows, the head's
// columns.
void prune_hidden(SmallerModel& out, int64_t in_cols, double fraction) {
  ModelConfig& m = out.model;
  if (fraction == 0 || m.hidden == 0) return;
  const int64_t units = m.hidden, classes = m.num_classes;
  auto& w = tensor(out.tensors, "hidden.weight", size_t(units * in_cols));
  auto& b = tensor(out.tensors, "hidden.bias", size_t(units));
  auto& head = tensor(out.tensors, "head.weight", size_t(classes * units));
  const auto score = l1_scores(w, in_cols, units, [](int64_t s) { return std::vector<int64_t>{s}; });
  const auto kept = keep_highest(score, iota(units), kept_of(units, fraction));
  w = take_rows(w, in_cols, kept);
  b = take_rows(b, 1, kept);
  head = take_cols(head, classes, units, 1, kept);
  m.hidden = int(kept.size());
  out.removed.push_back(fmt::format("hidden: {} -> {} units", units, kept.size()));
}

void prune_cnn(SmallerModel& out, const StructureFractions& f) {
  ModelConfig& m = out.model;
  const auto geometry = cnn_geometry(m);
  const int64_t k2 = int64_t(m.kernel_size) * m.kernel_size;
  const bool group_norm = m.norm == "group";
  const int64_t groups = group_norm ? m.norm_groups : 1;
  std::vector<int64_t> kept_in;  // the previous block's kept channels (empty: the image's, all kept)
  for (size_t i = 0; i < geometry.size() && f.channels > 0; ++i) {
    const int64_t out_c = geometry[i].out_c, in_c = geometry[i].in_c;
    const std::string p = fmt::format("blocks.{}.", i);
    auto& w = tensor(out.tensors, p + "conv.weight", size_t(out_c * in_c * k2));
    if (!kept_in.empty()) w = take_cols(w, out_c, in_c, k2, kept_in);
    const int64_t in_now = kept_in.empty() ? in_c : int64_t(kept_in.size());
    const auto score = l1_scores(w, in_now * k2, out_c, [](int64_t s) { return std::vector<int64_t>{s}; });
    // The same number from each norm group, so that every group keeps only its own channels.
    const int64_t per_group = out_c / groups, keep_per_group = kept_of(per_group, f.channels);
    std::vector<int64_t> kept;
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<int64_t> members(static_cast<size_t>(per_group));
      std::iota(members.begin(), members.end(), g * per_group);
      const auto top = keep_highest(score, members, keep_per_group);
      kept.insert(kept.end(), top.begin(), top.end());
    }
    w = take_rows(w, in_now * k2, kept);
    for (const char* name : {"conv.bias", "norm.weight", "norm.bias"}) {
      if (!group_norm && std::string(name).rfind("norm", 0) == 0) continue;
      auto& v = tensor(out.tensors, p + name, size_t(out_c));
      v = take_rows(v, 1, kept);
    }
    m.channels[i] = int64_t(kept.size());
    out.removed.push_back(fmt::format("blocks.{}: {} -> {} channels", i, out_c, kept.size()));
    kept_in = kept;
  }
  // The flattened features [C, H, W] of the last block feed the hidden layer (or the head): its kept channels' columns.
  const int64_t positions = int64_t(geometry.back().out_h) * geometry.back().out_w;
  const int64_t last_c = geometry.back().out_c;
  if (!kept_in.empty()) {
    const bool hidden = m.hidden > 0;
    const int64_t rows = hidden ? m.hidden : m.num_classes;
    auto& w = tensor(out.tensors, hidden ? "hidden.weight" : "head.weight", size_t(rows * last_c * positions));
    w = take_cols(w, rows, last_c, positions, kept_in);
  }
  prune_hidden(out, int64_t(m.channels.back()) * positions, f.hidden);
}

void prune_lstm(SmallerModel& out, const StructureFractions& f) {
  ModelConfig& m = out.model;
  const int64_t H = m.hidden_size, gates = m.cell == "gru" ? 3 : 4, features = m.input_shape[1];
  const int64_t keep = kept_of(H, f.units);
  std::vector<int64_t> kept_in;  // the previous layer's kept units (empty: the input features, all kept)
  for (int l = 0; l < m.n_layer && f.units > 0; ++l) {
    const int64_t in = l == 0 ? features : H;
    auto& w_ih = tensor(out.tensors, fmt::format("lstm.weight_ih_l{}", l), size_t(gates * H * in));
    auto& w_hh = tensor(out.tensors, fmt::format("lstm.weight_hh_l{}", l), size_t(gates * H * H));
    auto& b_ih = tensor(out.tensors, fmt::format("lstm.bias_ih_l{}", l), size_t(gates * H));
    auto& b_hh = tensor(out.tensors, fmt::format("lstm.bias_hh_l{}", l), size_t(gates * H));
    if (!kept_in.empty()) w_ih = take_cols(w_ih, gates * H, in, 1, kept_in);
    const int64_t in_now = kept_in.empty() ? in : int64_t(kept_in.size());
    // A unit's incoming weights: its row of every gate, from the layer's input and from the recurrent state.
    auto gate_rows = [&](int64_t j) {
      std::vector<int64_t> rows;
      for (int64_t g = 0; g < gates; ++g) rows.push_back(g * H + j);
      return rows;
    };
    auto score = l1_scores(w_ih, in_now, H, gate_rows);
    const auto recurrent = l1_scores(w_hh, H, H, gate_rows);
    for (int64_t j = 0; j < H; ++j) score[size_t(j)] += recurrent[size_t(j)];
    const auto kept = keep_highest(score, iota(H), keep);
    std::vector<int64_t> rows;  // gate-major, as the gates are laid out
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j : kept) rows.push_back(g * H + j);
    w_ih = take_rows(w_ih, in_now, rows);
    w_hh = take_cols(take_rows(w_hh, H, rows), int64_t(rows.size()), H, 1, kept);
    b_ih = take_rows(b_ih, 1, rows);
    b_hh = take_rows(b_hh, 1, rows);
    out.removed.push_back(fmt::format("lstm layer {}: {} -> {} units", l, H, kept.size()));
    kept_in = kept;
  }
  if (!kept_in.empty()) {
    const bool hidden = m.hidden > 0;
    const int64_t rows = hidden ? m.hidden : m.num_classes;
    auto& w = tensor(out.tensors, hidden ? "hidden.weight" : "head.weight", size_t(rows * H));
    w = take_cols(w, rows, H, 1, kept_in);
    m.hidden_size = int(keep);
  }
  prune_hidden(out, m.hidden_size, f.hidden);
}

void prune_gpt(SmallerModel& out, const StructureFractions& f) {
  ModelConfig& m = out.model;
  const int64_t C = m.d_model, H = m.n_head, D = gpt_attention_width(m) / H, A = H * D, F = gpt_mlp_width(m);
  const int64_t keep_heads = kept_of(H, f.heads), keep_units = kept_of(F, f.mlp);
  for (int l = 0; l < m.n_layer; ++l) {
    auto name = [&](const char* suffix) { return fmt::format("h.{}.{}", l, suffix); };
    if (f.heads > 0) {
      auto& w = tensor(out.tensors, name("attn.c_attn.weight"), size_t(3 * A * C));
      auto& b = tensor(out.tensors, name("attn.c_attn.bias"), size_t(3 * A));
      auto& proj = tensor(out.tensors, name("attn.c_proj.weight"), size_t(C * A));
      // Head h's incoming weights: rows h*D .. h*D+D-1 of each of the q, k and v blocks of c_attn.
      auto head_rows = [&](int64_t h) {
        std::vector<int64_t> rows;
        for (int64_t part = 0; part < 3; ++part)
          for (int64_t d = 0; d < D; ++d) rows.push_back(part * A + h * D + d);
        return rows;
      };
      const auto kept = keep_highest(l1_scores(w, C, H, head_rows), iota(H), keep_heads);
      std::vector<int64_t> rows;  // q, k, v blocks in order, each the kept heads' rows
      for (int64_t part = 0; part < 3; ++part)
        for (int64_t h : kept)
          for (int64_t d = 0; d < D; ++d) rows.push_back(part * A + h * D + d);
      w = take_rows(w, C, rows);
      b = take_rows(b, 1, rows);
      proj = take_cols(proj, C, H, D, kept);
      out.removed.push_back(fmt::format("h.{}.attn: {} -> {} heads", l, H, kept.size()));
    }
    if (f.mlp > 0) {
      auto& fc = tensor(out.tensors, name("mlp.c_fc.weight"), size_t(F * C));
      auto& fc_b = tensor(out.tensors, name("mlp.c_fc.bias"), size_t(F));
      auto& proj = tensor(out.tensors, name("mlp.c_proj.weight"), size_t(C * F));
      const auto kept =
          keep_highest(l1_scores(fc, C, F, [](int64_t s) { return std::vector<int64_t>{s}; }), iota(F), keep_units);
      fc = take_rows(fc, C, kept);
      fc_b = take_rows(fc_b, 1, kept);
      proj = take_cols(proj, C, F, 1, kept);
      out.removed.push_back(fmt::format("h.{}.mlp: {} -> {} units", l, F, kept.size()));
    }
  }
  if (f.heads > 0) {
    m.n_head = int(keep_heads);
    m.d_head = int(D);  // the heads keep their width
  }
  if (f.mlp > 0) m.d_mlp = int(keep_units);
}

}  // namespace

SmallerModel prune_structures(const ModelConfig& model, const HostTensors& tensors, const StructureFractions& f) {
  check_fraction("--channels", f.channels, model.kind == "cnn", model.kind);
  check_fraction("--units", f.units, model.kind == "lstm", model.kind);
  check_fraction("--hidden", f.hidden, model.kind != "gpt" && model.hidden > 0,
                 model.kind == "gpt" ? model.kind : model.kind + " without a hidden layer (model.hidden = 0)");
  check_fraction("--heads", f.heads, model.kind == "gpt", model.kind);
  check_fraction("--mlp", f.mlp, model.kind == "gpt", model.kind);
  STRATA_CHECK(f.channels > 0 || f.units > 0 || f.hidden > 0 || f.heads > 0 || f.mlp > 0,
               "strata prune: nothing to remove: give --channels (cnn), --units (lstm), --hidden (cnn, lstm), --heads "
               "or --mlp (gpt)");
  SmallerModel out{model, tensors, {}};
  if (model.kind == "cnn")
    prune_cnn(out, f);
  else if (model.kind == "lstm")
    prune_lstm(out, f);
  else
    prune_gpt(out, f);
  return out;
}

}  // namespace strata
