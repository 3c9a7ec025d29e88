#include "cli/commands.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>

#include "cli/checkpoint_commands.hpp"
#include "cli/cv_command.hpp"
#include "cli/ensemble_command.hpp"
#include "cli/preprocess_commands.hpp"
#include "cli/prune_command.hpp"
#include "comm/communicator.hpp"
#include "core/atomic_file.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/open_tokens.hpp"
#include "kernels/gemm.hpp"
#include "models/model_factory.hpp"
#include "nn/weights_io.hpp"
#include "strata_version.hpp"
#include "train/evaluate.hpp"
#include "train/metrics.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"
#include "train/training_data.hpp"

namespace strata::cli {
namespace {

int run_train(const std::string& config_path, const std::vector<std::string>& sets, MPI_Comm world) {
  const Config config = load_config(config_path, sets);
  const auto summary = train(config, world);
  int rank = 0;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  if (summary.stopped_early) return kExitResumable;
  if (rank == 0)
    fmt::print("done: {} steps, loss {:.4f} -> {:.4f}, val loss {:.4f}{}, median {:.1f} ms/step\n", summary.steps,
               summary.first_loss, summary.final_loss, summary.val_loss,
               summary.val_accuracy >= 0 ? fmt::format(", val accuracy {:.4f}", summary.val_accuracy) : "",
               summary.median_ms);
  return 0;
}

struct EvalOptions {
  std::string weights, metrics_json, predictions;
};

int run_eval(const std::string& config_path, const std::vector<std::string>& sets, const EvalOptions& options,
             MPI_Comm world) {
  Config config = load_config(config_path, sets);
  config.model = resolve_model(config.model, config.data.path, config.source);
  MpiCommunicator dp(world);  // evaluation splits the samples over every rank
  STRATA_CHECK(config.train.batch_size % dp.size() == 0, "{}: train.batch_size = {} does not split over {} ranks",
               config.source, config.train.batch_size, dp.size());
  // The whole model on every rank (no pipeline: a group of one stage).
  auto params = std::make_shared<ParamBuffer<float>>(model_tensors(config.model));
  TensorParallel<float> no_tensor_parallel;
  const auto model =
      make_model<float>(config.model, config.train.batch_size / dp.size(), params, {}, no_tensor_parallel);
  load_weights(options.weights, *params, config.model);
  MpiCommunicator one_stage(MPI_COMM_SELF);
  PipelineRunner<float> runner(*model, one_stage, PipelineSchedule::OneFOneB);
  ScopedGemmPrecision precision(gemm_precision_named(config.train.precision));
  const bool lead = dp.rank() == 0;
  if (config.model.kind == "gpt") {
    STRATA_CHECK(options.predictions.empty(),
                 "strata eval: --predictions applies to classifiers (model.kind cnn, lstm)");
    const auto val = data::open_token_split(config.data.path, "val", config.model.seq_len, config.model.vocab_size);
    const auto r = evaluate(runner, *model, *val, config.train.eval_batches, config.train.batch_size, dp);
    if (lead) fmt::print("val loss {:.6f} over {} tokens ({})\n", r.loss, r.tokens, options.weights);
    if (lead && !options.metrics_json.empty())
      write_file_atomically(
          options.metrics_json,
          nlohmann::json{{"loss", r.loss}, {"perplexity", std::exp(r.loss)}, {"tokens", r.tokens}}.dump(2) + "\n");
    return 0;
  }
  const data::ArraySplit val(config.data.path, "val");
  const bool normalize = config.data.normalize && !val.manifest().mean.empty();
  const auto r =
      evaluate_classifier(runner, *model, val, normalize, config.train.eval_batches * config.train.batch_size, dp,
                          /*keep_predictions=*/!options.predictions.empty());
  if (!lead) return 0;
  fmt::print("{} on {} ({}):\n{}", options.weights, val.describe(), config.model.kind, format_report(r.metrics));
  if (!options.metrics_json.empty()) write_file_atomically(options.metrics_json, to_json(r.metrics).dump(2) + "\n");
  if (!options.predictions.empty()) {
    const hsize_t rows = r.targets.size(), classes = hsize_t(r.metrics.classes);
    write_atomically(options.predictions, [&](const std::string& tmp) {
      auto file = h5::create_file(tmp);
      h5::write_dataset<int32_t>(file, "y_true", {rows}, r.targets.data());
      h5::write_dataset<int32_t>(file, "y_pred", {rows}, r.predicted.data());
      h5::write_dataset<float>(file, "scores", {rows, classes}, r.scores.data());
      STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
    });
  }
  return 0;
}

// Every field with its default and meaning; the model section once per kind, with that kind's fields.
void print_config_doc() {
  auto print_field = [](const ConfigField& f) {
    std::string value = format_value(f.default_value);
    if (f.default_value.index() == 3) value = "\"" + value + "\"";
    fmt::print("{:<20} = {:<14} # {}\n", f.key.substr(f.key.find('.') + 1), value, f.doc);
  };
  std::string section;
  for (const auto& f : config_fields()) {
    const auto s = f.key.substr(0, f.key.find('.'));
    if (s == section) continue;
    section = s;
    if (s != "model") {
      fmt::print("\n[{}]\n", s);
      for (const auto& g : config_fields())
        if (g.key.rfind(s + ".", 0) == 0) print_field(g);
      continue;
    }
    for (const auto& kind : model_kinds()) {
      fmt::print("{}[model]  # kind = \"{}\"\n", kind == model_kinds().front() ? "" : "\n", kind);
      for (const auto& g : config_fields())
        if (g.key.rfind("model.", 0) == 0 && g.applies_to(kind)) {
          if (g.key == "model.kind")
            fmt::print("{:<20} = {:<14} # {}\n", "kind", "\"" + kind + "\"", g.doc);
          else
            print_field(g);
        }
    }
  }
}

}  // namespace

int run(int argc, char** argv, MPI_Comm world) {
  CLI::App app{"Strata: train neural networks on clusters (MPI + Kokkos + HDF5)"};
  app.set_version_flag("--version", std::string("strata ") + STRATA_VERSION);
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> sets;
  auto* train_cmd = app.add_subcommand("train", "train a model (GPT, CNN or LSTM: model.kind) from a TOML config");
  train_cmd->add_option("--config", config_path, "TOML config file")->required();
  train_cmd->add_option("--set", sets, "override a config field: section.key=value (repeatable)");
  std::string save_weights;
  train_cmd->add_option("--save-weights", save_weights,
                        "write the final weights to this HDF5 file (= train.save_weights)");
  std::string init_from;
  train_cmd->add_option(
      "--init-from", init_from,
      "continual training: start from these weights (weights file or checkpoint) with a new optimizer "
      "state and schedule (= train.init_from)");
  std::string resume;
  train_cmd->add_option("--resume", resume,
                        "auto (the latest valid checkpoint in checkpoint.dir, or a fresh start) or a checkpoint file "
                        "(= checkpoint.resume)");

  auto* eval_cmd = app.add_subcommand(
      "eval",
      "evaluate saved weights on the validation split: loss (gpt); accuracy, top-k, precision, recall, F1 per "
      "class and averaged, confusion matrix (cnn, lstm)");
  eval_cmd->add_option("--config", config_path, "TOML config file (model and data)")->required();
  eval_cmd->add_option("--set", sets, "override a config field: section.key=value (repeatable)");
  EvalOptions eval_options;
  eval_cmd->add_option("--weights", eval_options.weights, "HDF5 weights written by train.save_weights")->required();
  eval_cmd->add_option("--metrics-json", eval_options.metrics_json, "also write the metrics to this JSON file");
  eval_cmd->add_option(
      "--predictions", eval_options.predictions,
      "classifiers: write y_true, y_pred [rows] and scores [rows, classes] (logits) to this HDF5 file");

  auto* config_cmd = app.add_subcommand("config", "print the resolved config, or every field with --doc");
  bool doc = false;
  config_cmd->add_flag("--doc", doc, "list every field with its default and meaning");
  config_cmd->add_option("--config", config_path, "TOML config file");
  config_cmd->add_option("--set", sets, "override a config field");

  Action action;  // set by the preprocess, dataset, inspect and export subcommands when parsed
  add_preprocess_commands(app, world, action);
  add_dataset_commands(app, world, action);
  add_checkpoint_commands(app, world, action);
  add_cv_command(app, world, action);
  add_ensemble_command(app, world, action);
  add_prune_command(app, world, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; the usage is one `--help` away.
    fmt::print(stderr, "strata: error: {} (see strata --help)\n", e.what());
    return 2;
  }
  if (train_cmd->parsed()) {
    // A path on the command line means the usual thing (relative to the working directory), unlike the
    // config field, which is relative to out_dir.
    if (!save_weights.empty()) sets.push_back("train.save_weights=" + std::filesystem::absolute(save_weights).string());
    if (!init_from.empty()) sets.push_back("train.init_from=" + std::filesystem::absolute(init_from).string());
    if (!resume.empty())
      sets.push_back("checkpoint.resume=" +
                     (resume == "auto" || resume == "none" ? resume : std::filesystem::absolute(resume).string()));
    return run_train(config_path, sets, world);
  }
  if (eval_cmd->parsed()) return run_eval(config_path, sets, eval_options, world);
  if (action) return action();
  if (config_cmd->parsed()) {
    if (doc)
      print_config_doc();
    else
      fmt::print("{}", to_toml(load_config(config_path, sets)));
  }
  return 0;
}

}  // namespace strata::cli
