#include "cli/ensemble_command.hpp"

#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "core/atomic_file.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/open_tokens.hpp"
#include "kernels/gemm.hpp"
#include "models/model_factory.hpp"
#include "nn/weights_io.hpp"
#include "train/ensemble.hpp"
#include "train/evaluate.hpp"
#include "train/metrics.hpp"
#include "train/model_source.hpp"
#include "train/training_data.hpp"

namespace strata::cli {
namespace {

struct EnsembleOptions {
  std::string config_path;
  std::vector<std::string> sets, members;
  std::string combine = "mean";
  std::string metrics_json;
};

int run_ensemble(const EnsembleOptions& o, MPI_Comm world) {
  Config config = load_config(o.config_path, o.sets);
  config.model = resolve_model(config.model, config.data.path, config.source);
  const EnsembleCombine combine = ensemble_combine_named(o.combine);
  STRATA_CHECK(o.members.size() >= 2, "strata ensemble: {} member(s): expected at least 2 (--member PATH ...)",
               o.members.size());
  const bool language_model = config.model.kind == "gpt";
  STRATA_CHECK(!language_model || combine == EnsembleCombine::Mean,
               "strata ensemble: --combine vote applies to classifiers; language models average probabilities");
  MpiCommunicator dp(world);  // every member on every rank, the rows split over the ranks
  STRATA_CHECK(config.train.batch_size % dp.size() == 0, "{}: train.batch_size = {} does not split over {} ranks",
               config.source, config.train.batch_size, dp.size());
  MpiCommunicator one_stage(MPI_COMM_SELF);
  ScopedGemmPrecision precision(gemm_precision_named(config.train.precision));
  const bool lead = dp.rank() == 0;
  // Checkpoints are exported here first (removed at the end).
  int pid = int(getpid());
  STRATA_MPI(MPI_Bcast(&pid, 1, MPI_INT, 0, world));
  const std::string work = (std::filesystem::temp_directory_path() / fmt::format("strata-ensemble-{}", pid)).string();
  if (lead) std::filesystem::create_directories(work);

  std::unique_ptr<data::WindowSource> windows;
  std::unique_ptr<data::ArraySplit> arrays;
  bool normalize = false;
  if (language_model) {
    windows = data::open_token_split(config.data.path, "val", config.model.seq_len, config.model.vocab_size);
  } else {
    arrays = std::make_unique<data::ArraySplit>(config.data.path, "val");
    normalize = config.data.normalize && !arrays->manifest().mean.empty();
  }
  nlohmann::json report = {{"combine", o.combine}, {"members", nlohmann::json::array()}};
  std::vector<std::vector<float>> member_logits;
  std::vector<std::vector<double>> member_logp;
  std::vector<int32_t> targets;
  std::string table = fmt::format("{:<48} {:>10} {:>10} {:>10}\n", "member", "val loss", "accuracy", "macro F1");
  for (size_t i = 0; i < o.members.size(); ++i) {
    const std::string& member = o.members[i];
    const std::string what = fmt::format("strata ensemble: member '{}'", member);
    STRATA_CHECK(std::filesystem::exists(member), "{} does not exist", what);
    const std::string weights =
        weights_file_of(member, (std::filesystem::path(work) / fmt::format("member-{}.h5", i)).string(), world);
    const ModelConfig m = stored_model_for(weights, config, what);
    auto params = std::make_shared<ParamBuffer<float>>(model_tensors(m));
    TensorParallel<float> no_tensor_parallel;
    const auto model = make_model<float>(m, config.train.batch_size / dp.size(), params, {}, no_tensor_parallel);
    load_weights(weights, *params, m);
    PipelineRunner<float> runner(*model, one_stage, PipelineSchedule::OneFOneB);
    if (language_model) {
      member_logp.push_back(
          target_log_probs(runner, *model, *windows, config.train.eval_batches, config.train.batch_size, dp));
      const double loss = mixture_loss({member_logp.back()});
      report["members"].push_back({{"path", member}, {"val_loss", loss}});
      table += fmt::format("{:<48} {:>10.6f} {:>10} {:>10}\n", member, loss, "-", "-");
      continue;
    }
    auto r = evaluate_classifier(runner, *model, *arrays, normalize,
                                 config.train.eval_batches * config.train.batch_size, dp, /*keep_predictions=*/true);
    member_logits.push_back(std::move(r.scores));
    targets = r.targets;
    report["members"].push_back({{"path", member}, {"metrics", to_json(r.metrics)}});
    table += fmt::format("{:<48} {:>10.6f} {:>10.4f} {:>10.4f}\n", member, r.metrics.loss, r.metrics.accuracy,
                         r.metrics.macro.f1);
  }
  const std::string name = fmt::format("ensemble of {} ({})", o.members.size(), o.combine);
  if (language_model) {
    const double loss = mixture_loss(member_logp);
    report["ensemble"] = {{"val_loss", loss}, {"perplexity", std::exp(loss)}, {"tokens", member_logp.front().size()}};
    table += fmt::format("{:<48} {:>10.6f} {:>10} {:>10}\n", name, loss, "-", "-");
  } else {
    const int classes = config.model.num_classes;
    const int64_t rows = int64_t(targets.size());
    ClassificationCounts counts(classes), mean_counts(classes);
    counts.add(combine_logits(member_logits, rows, classes, combine).data(), targets.data(), rows);
    ClassificationMetrics e = classification_metrics(counts);
    if (combine == EnsembleCombine::Vote) {  // the loss is the averaged probabilities'
      mean_counts.add(combine_logits(member_logits, rows, classes, EnsembleCombine::Mean).data(), targets.data(), rows);
      e.loss = classification_metrics(mean_counts).loss;
    }
    report["ensemble"] = to_json(e);
    table += fmt::format("{:<48} {:>10.6f} {:>10.4f} {:>10.4f}\n", name, e.loss, e.accuracy, e.macro.f1);
  }
  if (lead) {
    std::filesystem::remove_all(work);
    fmt::print(
        "validation split of {} ({}):\n{}", config.data.path,
        language_model ? fmt::format("{} tokens", member_logp.front().size()) : fmt::format("{} rows", targets.size()),
        table);
    if (!o.metrics_json.empty()) write_file_atomically(o.metrics_json, report.dump(2) + "\n");
  }
  STRATA_MPI(MPI_Barrier(world));
  return 0;
}

}  // namespace

void add_ensemble_command(CLI::App& app, MPI_Comm world, Action& action) {
  auto options = std::make_shared<EnsembleOptions>();
  auto* cmd = app.add_subcommand(
      "ensemble",
      "evaluate several trained models (weights files or checkpoints) on the validation split and their ensemble: "
      "averaged probabilities or majority vote");
  cmd->add_option("--config", options->config_path, "TOML config file (the dataset, batch size, eval_batches)")
      ->required();
  cmd->add_option("--set", options->sets, "override a config field: section.key=value (repeatable)");
  cmd->add_option("--member", options->members,
                  "a member: weights file (train.save_weights, best.h5), checkpoint file or checkpoint directory "
                  "(repeat: at least 2)")
      ->required();
  cmd->add_option("--combine", options->combine, "mean (average the probabilities) or vote (classifiers)");
  cmd->add_option("--metrics-json", options->metrics_json, "also write every member's and the ensemble's metrics");
  cmd->callback([options, world, &action] { action = [options, world] { return run_ensemble(*options, world); }; });
}

}  // namespace strata::cli
