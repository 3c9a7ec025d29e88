// Writes what the PyTorch reference test (gpt_reference.py) checks: initial weights, one batch,
// logits, loss, every gradient, and the losses of `steps` AdamW steps on that batch.
// Usage: reference_dump --config FILE [--set k=v ...] --out DUMP.h5
#include <mpi.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/rng.hpp"
#include "dump_util.hpp"
#include "kernels/gemm.hpp"
#include "kernels/grad_norm.hpp"
#include "models/gpt.hpp"
#include "models/model_factory.hpp"
#include "optim/adamw.hpp"

using namespace strata;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"reference_dump"};
  std::string config_path, out;
  std::vector<std::string> sets;
  int steps = 5;
  int teacher_seed = -1;
  app.add_option("--teacher-seed", teacher_seed,
                 "distil from a teacher of the same architecture initialised with this seed (distill.temperature, "
                 "distill.alpha)");
  app.add_option("--config", config_path)->required();
  app.add_option("--set", sets);
  app.add_option("--out", out)->required();
  app.add_option("--steps", steps);
  CLI11_PARSE(app, argc, argv);

  Config cfg = load_config(config_path, sets);
  // train.precision = "bf16": every float GEMM below rounds its operands (the checker then uses the bf16 twin).
  const bool bf16 = cfg.train.precision == "bf16";
  ScopedGemmPrecision precision(bf16 ? GemmPrecision::BF16 : GemmPrecision::FP32);
  const auto& m = cfg.model;
  const int B = cfg.train.batch_size, N = B * m.seq_len;
  Gpt<float> model(m, B);
  model.store_gemm_inputs_bf16(bf16 && cfg.train.bf16_activations);
  // train.dropout (and the per-site rates): every pass below trains, pass s with the masks of step s.
  const DropoutRates rates = dropout_rates(m, cfg.train);
  model.set_dropout(rates);
  auto& P = model.params();
  P.initialize(uint64_t(cfg.train.seed));
  // Non-trivial biases and LayerNorm parameters, so that the reference exercises them too.
  {
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), P.params());
    for (const auto& s : P.specs()) {
      if (s.shape.size() != 1) continue;
      const uint64_t key = rng::make_key(uint64_t(cfg.train.seed) + 1, s.name);
      for (int64_t i = 0; i < s.numel(); ++i) host(s.offset + i) += float(0.1 * rng::normal(key, uint64_t(i)));
    }
    Kokkos::deep_copy(P.params(), host);
  }
  // A batch of random tokens; y is x shifted by one within a longer random stream.
  Vec<int32_t> x("x", N), y("y", N);
  auto hx = Kokkos::create_mirror_view(x);
  auto hy = Kokkos::create_mirror_view(y);
  const uint64_t key = rng::make_key(uint64_t(cfg.train.seed), "reference_batch");
  for (int b = 0; b < B; ++b)
    for (int t = 0; t <= m.seq_len; ++t) {
      const int32_t tok = int32_t(rng::bits(key, uint64_t(b) * (m.seq_len + 1) + t) % uint64_t(m.vocab_size));
      if (t < m.seq_len) hx(b * m.seq_len + t) = tok;
      if (t > 0) hy(b * m.seq_len + t - 1) = tok;
    }
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(y, hy);

  auto file = h5::create_file(out);
  for (auto [name, v] : std::vector<std::pair<const char*, int64_t>>{{"n_layer", m.n_layer},
                                                                     {"n_head", m.n_head},
                                                                     {"d_model", m.d_model},
                                                                     {"vocab_size", m.vocab_size},
                                                                     {"seq_len", m.seq_len},
                                                                     {"d_head", m.d_head},
                                                                     {"d_mlp", m.d_mlp},
                                                                     {"batch_size", B},
                                                                     {"steps", steps},
                                                                     {"bf16", int64_t(bf16)}})
    h5::write_attr(file, name, v);
  for (auto [name, v] : std::vector<std::pair<const char*, double>>{{"lr", cfg.train.lr},
                                                                    {"beta1", cfg.train.beta1},
                                                                    {"beta2", cfg.train.beta2},
                                                                    {"eps", cfg.train.eps},
                                                                    {"weight_decay", cfg.train.weight_decay},
                                                                    {"grad_clip", cfg.train.grad_clip}})
    h5::write_attr(file, name, v);
  {
    auto g = h5::create_group(file, "weights");
    reference::write_tensors(g, P, P.params());
  }
  if (rates.any()) {
    // The sites' keys at each pass (kernels/dropout.hpp), from which the twin draws the same masks.
    h5::write_attr(file, "dropout_embedding", rates.embedding);
    h5::write_attr(file, "dropout_attention", rates.attention);
    h5::write_attr(file, "dropout_residual", rates.residual);
    auto g = h5::create_group(file, "dropout_keys");
    std::vector<std::string> sites{"dropout.embedding"};
    for (int l = 0; l < m.n_layer; ++l)
      for (const char* site : {"dropout.attention.", "dropout.attn_residual.", "dropout.mlp_residual."})
        sites.push_back(site + std::to_string(l));
    for (const auto& site : sites) {
      std::vector<int64_t> keys;  // the uint64 keys, stored as int64 (same bits)
      for (int s = 0; s <= steps; ++s)
        keys.push_back(int64_t(dropout_mask(uint64_t(cfg.train.seed), site, s, 1, 0, 1).key));
      h5::write_dataset<int64_t>(g, site, {keys.size()}, keys.data());
    }
  }
  h5::write_dataset<int32_t>(file, "x", {hsize_t(B), hsize_t(m.seq_len)}, hx.data());
  h5::write_dataset<int32_t>(file, "y", {hsize_t(B), hsize_t(m.seq_len)}, hy.data());

  Vec<float> teacher_logits;
  if (teacher_seed >= 0) {
    // The teacher's logits on the batch (fixed: the teacher does not train); every pass distils from them.
    Gpt<float> teacher(m, B);
    teacher.params().initialize(uint64_t(teacher_seed));
    teacher.forward_stage(0, {x, {}, y}, nullptr, false);
    teacher_logits = Vec<float>("teacher_logits", teacher.logits(0).extent(0));
    Kokkos::deep_copy(teacher_logits, teacher.logits(0));
    model.set_distillation({cfg.distill.temperature, cfg.distill.alpha});
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), teacher_logits);
    h5::write_dataset<float>(file, "teacher_logits", {hsize_t(B), hsize_t(m.seq_len), hsize_t(m.vocab_size)},
                             host.data());
    h5::write_attr(file, "distill_temperature", cfg.distill.temperature);
    h5::write_attr(file, "distill_alpha", cfg.distill.alpha);
  }
  AdamW<float> opt(cfg.train, P.specs(), 0, int64_t(P.size()));
  std::vector<float> losses;
  for (int s = 0; s <= steps; ++s) {
    P.zero_grads();
    const float loss =
        model.forward({x, {}, y, DropoutContext{rates.any(), uint64_t(cfg.train.seed), s, 0}, teacher_logits});
    losses.push_back(loss);
    if (s == 0) {
      auto logits = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.logits(0));
      h5::write_dataset<float>(file, "logits", {hsize_t(B), hsize_t(m.seq_len), hsize_t(m.vocab_size)}, logits.data());
      h5::write_dataset<float>(file, "loss", {1}, &loss);
    }
    if (s == steps) break;
    model.backward();
    if (s == 0) {
      auto g = h5::create_group(file, "grads");
      reference::write_tensors(g, P, P.grads());
    }
    clip_grad_norm<float>(P.grads(), P.size(), cfg.train.grad_clip);
    opt.step(P.params(), P.grads(), cfg.train.lr);
  }
  h5::write_dataset<float>(file, "losses", {hsize_t(losses.size())}, losses.data());
  std::cout << "reference_dump: wrote " << out << " (loss " << losses.front() << " -> " << losses.back() << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return reference::dump_main(argc, argv, "reference_dump", run); }
