// Writes what the PyTorch reference test (classifier_reference.py) checks for a CNN or LSTM/GRU classifier: the
// resolved config, initial weights, one batch, logits, loss, every gradient, and the losses of `steps` AdamW steps
// (with gradient clipping) on that batch.
// Usage: classifier_dump --config FILE [--set k=v ...] --out DUMP.h5 [--steps N]
#include <mpi.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/rng.hpp"
#include "dump_util.hpp"
#include "kernels/dropout.hpp"
#include "kernels/grad_norm.hpp"
#include "models/model_factory.hpp"
#include "optim/adamw.hpp"

using namespace strata;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"classifier_dump"};
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

  const Config cfg = load_config(config_path, sets);
  const ModelConfig& m = cfg.model;
  STRATA_CHECK(m.kind != "gpt", "classifier_dump: model.kind = gpt (use reference_dump)");
  const int B = cfg.train.batch_size;
  auto params = std::make_shared<ParamBuffer<float>>(model_tensors(m));
  TensorParallel<float> no_tp;
  const auto model = make_model<float>(m, B, params, {}, no_tp);
  model->set_label_smoothing(cfg.train.label_smoothing);
  // train.dropout: every pass below trains, pass s with the masks of step s.
  const DropoutRates rates = dropout_rates(m, cfg.train);
  model->set_dropout(rates);
  auto& P = *params;
  P.initialize(uint64_t(cfg.train.seed));
  // Non-trivial biases and norm parameters, so that the reference exercises them too.
  {
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), P.params());
    for (const auto& s : P.specs()) {
      if (s.shape.size() != 1) continue;
      const uint64_t key = rng::make_key(uint64_t(cfg.train.seed) + 1, s.name);
      for (int64_t i = 0; i < s.numel(); ++i) host(s.offset + i) += float(0.1 * rng::normal(key, uint64_t(i)));
    }
    Kokkos::deep_copy(P.params(), host);
  }
  // A batch of standard-normal inputs and random classes.
  MicroBatch<float> batch = model->allocate_batch();
  auto hx = Kokkos::create_mirror_view(batch.features);
  auto hy = Kokkos::create_mirror_view(batch.targets);
  const uint64_t key = rng::make_key(uint64_t(cfg.train.seed), "reference_batch");
  for (size_t i = 0; i < hx.extent(0); ++i) hx(i) = float(rng::normal(key, i));
  for (size_t i = 0; i < hy.extent(0); ++i) hy(i) = int32_t(rng::bits(key, hx.extent(0) + i) % uint64_t(m.num_classes));
  Kokkos::deep_copy(batch.features, hx);
  Kokkos::deep_copy(batch.targets, hy);

  auto file = h5::create_file(out);
  h5::write_attr(file, "config", to_toml(cfg));
  h5::write_attr(file, "steps", int64_t(steps));
  {
    auto g = h5::create_group(file, "weights");
    reference::write_tensors(g, P, P.params());
  }
  std::vector<hsize_t> xshape{hsize_t(B)};
  for (auto d : m.input_shape) xshape.push_back(hsize_t(d));
  h5::write_dataset<float>(file, "x", xshape, hx.data());
  const hsize_t per = hsize_t(model->targets_per_sample());
  h5::write_dataset<int32_t>(
      file, "y", per > 1 ? std::vector<hsize_t>{hsize_t(B), per} : std::vector<hsize_t>{hsize_t(B)}, hy.data());

  if (rates.any()) {
    // The sites' keys at each pass (kernels/dropout.hpp), from which the twin draws the same masks; stored as int64.
    auto g = h5::create_group(file, "dropout_keys");
    std::vector<std::string> sites{"dropout.hidden"};
    if (m.kind == "cnn") sites.push_back("dropout.features");
    for (int l = 0; m.kind == "lstm" && l < m.n_layer; ++l) sites.push_back("dropout.layer." + std::to_string(l));
    for (const auto& site : sites) {
      std::vector<int64_t> keys;
      for (int s = 0; s <= steps; ++s)
        keys.push_back(int64_t(dropout_mask(uint64_t(cfg.train.seed), site, s, 1, 0, 1).key));
      h5::write_dataset<int64_t>(g, site, {keys.size()}, keys.data());
    }
  }
  if (teacher_seed >= 0) {
    // The teacher's logits on the batch (fixed: the teacher does not train); every pass distils from them.
    auto teacher_params = std::make_shared<ParamBuffer<float>>(model_tensors(m));
    teacher_params->initialize(uint64_t(teacher_seed));
    const auto teacher = make_model<float>(m, B, teacher_params, {}, no_tp);
    teacher->forward_stage(0, batch, nullptr, false);
    batch.teacher_logits = Vec<float>("teacher_logits", teacher->logits(0).extent(0));
    Kokkos::deep_copy(batch.teacher_logits, teacher->logits(0));
    model->set_distillation({cfg.distill.temperature, cfg.distill.alpha});
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.teacher_logits);
    h5::write_dataset<float>(file, "teacher_logits", {hsize_t(B) * per, hsize_t(model->classes())}, host.data());
    h5::write_attr(file, "distill_temperature", cfg.distill.temperature);
    h5::write_attr(file, "distill_alpha", cfg.distill.alpha);
  }
  AdamW<float> opt(cfg.train, P.specs(), 0, int64_t(P.size()));
  std::vector<float> losses;
  for (int s = 0; s <= steps; ++s) {
    P.zero_grads();
    batch.dropout = {rates.any(), uint64_t(cfg.train.seed), s, 0};
    const float loss = model->forward(batch);
    losses.push_back(loss);
    if (s == 0) {
      auto logits = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model->logits(0));
      h5::write_dataset<float>(file, "logits", {hsize_t(B) * per, hsize_t(model->classes())}, logits.data());
      h5::write_dataset<float>(file, "loss", {1}, &loss);
    }
    if (s == steps) break;
    model->backward();
    if (s == 0) {
      auto g = h5::create_group(file, "grads");
      reference::write_tensors(g, P, P.grads());
    }
    clip_grad_norm<float>(P.grads(), P.size(), cfg.train.grad_clip);
    opt.step(P.params(), P.grads(), cfg.train.lr);
  }
  h5::write_dataset<float>(file, "losses", {hsize_t(losses.size())}, losses.data());
  std::cout << "classifier_dump: wrote " << out << " (" << m.kind << ", loss " << losses.front() << " -> "
            << losses.back() << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return reference::dump_main(argc, argv, "classifier_dump", run); }
