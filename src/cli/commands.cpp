#include "cli/commands.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "comm/communicator.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "cli/checkpoint_commands.hpp"
#include "cli/preprocess_commands.hpp"
#include "data/open_tokens.hpp"
#include "models/model_factory.hpp"
#include "nn/weights_io.hpp"
#include "strata_version.hpp"
#include "train/evaluate.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"

namespace strata::cli {
namespace {

int run_train(const std::string& config_path, const std::vector<std::string>& sets, MPI_Comm world) {
  const Config config = load_config(config_path, sets);
  const auto summary = train(config, world);
  int rank = 0;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  if (summary.stopped_early) return kExitResumable;
  if (rank == 0)
    fmt::print("done: {} steps, loss {:.4f} -> {:.4f}, val loss {:.4f}, median {:.1f} ms/step\n", summary.steps,
             summary.first_loss, summary.final_loss, summary.val_loss, summary.median_ms);
  return 0;
}

int run_eval(const std::string& config_path, const std::vector<std::string>& sets, const std::string& weights,
             MPI_Comm world) {
  const Config config = load_config(config_path, sets);
  MpiCommunicator dp(world);  // evaluation splits the windows over every rank
  STRATA_CHECK(config.train.batch_size % dp.size() == 0, "{}: train.batch_size = {} does not split over {} ranks",
               config.source, config.train.batch_size, dp.size());
  const auto val = data::open_token_split(config.data.path, "val", config.model.seq_len, config.model.vocab_size);
  // The whole model on every rank (no pipeline: a group of one stage).
  auto params = std::make_shared<ParamBuffer<float>>(model_tensors(config.model));
  TensorParallel<float> no_tensor_parallel;
  const auto model = make_model<float>(config.model, config.train.batch_size / dp.size(), params, {},
                                       no_tensor_parallel);
  load_weights(weights, *params, config.model);
  MpiCommunicator one_stage(MPI_COMM_SELF);
  PipelineRunner<float> runner(*model, one_stage, PipelineSchedule::OneFOneB);
  const auto r = evaluate(runner, *model, *val, config.train.eval_batches, config.train.batch_size, dp);
  if (dp.rank() == 0) fmt::print("val loss {:.6f} over {} tokens ({})\n", r.loss, r.tokens, weights);
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
          if (g.key == "model.kind") fmt::print("{:<20} = {:<14} # {}\n", "kind", "\"" + kind + "\"", g.doc);
          else print_field(g);
        }
    }
  }
}

}  // namespace

int run(int argc, char** argv, MPI_Comm world) {
  CLI::App app{"Strata: train neural networks on clusters (MPI + Kokkos + HDF5)"};
  app.set_version_flag("--version", std::string("strata ") + STRATA_VERSION);
  app.require_subcommand(1);

  std::string config_path, weights;
  std::vector<std::string> sets;
  auto* train_cmd = app.add_subcommand("train", "train a GPT from a TOML config");
  train_cmd->add_option("--config", config_path, "TOML config file")->required();
  train_cmd->add_option("--set", sets, "override a config field: section.key=value (repeatable)");
  std::string save_weights;
  train_cmd->add_option("--save-weights", save_weights, "write the final weights to this HDF5 file (= train.save_weights)");
  std::string resume;
  train_cmd->add_option("--resume", resume,
                        "auto (the latest valid checkpoint in checkpoint.dir, or a fresh start) or a checkpoint file "
                        "(= checkpoint.resume)");

  auto* eval_cmd = app.add_subcommand("eval", "validation loss of saved weights");
  eval_cmd->add_option("--config", config_path, "TOML config file (model and data)")->required();
  eval_cmd->add_option("--set", sets, "override a config field: section.key=value (repeatable)");
  eval_cmd->add_option("--weights", weights, "HDF5 weights written by train.save_weights")->required();

  auto* config_cmd = app.add_subcommand("config", "print the resolved config, or every field with --doc");
  bool doc = false;
  config_cmd->add_flag("--doc", doc, "list every field with its default and meaning");
  config_cmd->add_option("--config", config_path, "TOML config file");
  config_cmd->add_option("--set", sets, "override a config field");

  Action action;  // set by the preprocess, dataset, inspect and export subcommands when parsed
  add_preprocess_commands(app, world, action);
  add_dataset_commands(app, world, action);
  add_checkpoint_commands(app, world, action);

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
    if (!resume.empty())
      sets.push_back("checkpoint.resume=" +
                     (resume == "auto" || resume == "none" ? resume : std::filesystem::absolute(resume).string()));
    return run_train(config_path, sets, world);
  }
  if (eval_cmd->parsed()) return run_eval(config_path, sets, weights, world);
  if (action) return action();
  if (config_cmd->parsed()) {
    if (doc) print_config_doc();
    else fmt::print("{}", to_toml(load_config(config_path, sets)));
  }
  return 0;
}

}  // namespace strata::cli
