#include "cli/cv_command.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "train/cross_validation.hpp"
#include "train/stop_request.hpp"
#include "train/trainer.hpp"

namespace strata::cli {
namespace {

struct CvOptions {
  std::string config_path;
  std::vector<std::string> sets;
  int folds = 0;  // 0: data.cv_folds
  int fold = -1;  // -1: every fold
  bool report_only = false;
  std::string resume;
};

int run_cv(const CvOptions& o, MPI_Comm world) {
  const Config base = load_config(o.config_path, o.sets);
  const int k = o.folds > 0 ? o.folds : base.data.cv_folds;
  STRATA_CHECK(k >= 2, "{}: strata cv needs k >= 2 folds (--folds K or data.cv_folds), got {}", base.source, k);
  STRATA_CHECK(o.fold >= -1 && o.fold < k, "strata cv: --fold {}: expected 0 .. {}", o.fold, k - 1);
  STRATA_CHECK(o.resume.empty() || o.resume == "auto" || o.resume == "none",
               "strata cv: --resume {}: expected auto or none (each fold resumes from its own checkpoints)", o.resume);
  const std::string& out_dir = base.train.out_dir;
  const bool lead = rank_of(world) == 0;
  // Every rank decides on the lead's view of the fold directories.
  auto complete = [&](int fold) {
    int done = lead && fold_complete(out_dir, fold) ? 1 : 0;
    STRATA_MPI(MPI_Bcast(&done, 1, MPI_INT, 0, world));
    return done == 1;
  };
  if (!o.report_only) {
    const int first = o.fold >= 0 ? o.fold : 0, end = o.fold >= 0 ? o.fold + 1 : k;
    const auto start = std::chrono::steady_clock::now();
    int trained = 0;
    for (int fold = first; fold < end; ++fold) {
      if (complete(fold)) {
        if (lead)
          fmt::print("cv: fold {} of {} is complete in {}: not trained again\n", fold, k, fold_dir(out_dir, fold));
        continue;
      }
      if (lead) fmt::print("cv: fold {} of {}: training in {}\n", fold, k, fold_dir(out_dir, fold));
      auto sets = o.sets;
      for (auto& s : fold_overrides(out_dir, k, fold)) sets.push_back(s);
      if (!o.resume.empty()) sets.push_back("checkpoint.resume=" + o.resume);
      const TrainSummary summary = train(load_config(o.config_path, sets), world);
      if (summary.stopped_early) return kExitResumable;  // a signal or the time limit: resume the same fold later
      // Progress over the folds: this invocation's pace so far, for the folds it still has to train.
      ++trained;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (lead && end - fold > 1)
        fmt::print("cv: fold {} of {} trained; {} elapsed, ETA {} for the {} fold(s) left\n", fold, k,
                   format_duration(elapsed), format_duration(elapsed / trained * (end - fold - 1)), end - fold - 1);
    }
    if (o.fold >= 0) {
      int done = 0;
      for (int fold = 0; fold < k; ++fold) done += complete(fold) ? 1 : 0;
      if (done < k) {
        if (lead)
          fmt::print("cv: fold {} done; {} of {} folds complete (report once all are: strata cv --report)\n", o.fold,
                     done, k);
        return 0;
      }
    }
  }
  std::vector<FoldResult> results;
  for (int fold = 0; fold < k; ++fold) results.push_back(read_fold_result(out_dir, fold));
  const CrossValidationReport report = summarize_folds(std::move(results));
  if (lead) {
    const auto path = (std::filesystem::path(out_dir) / "cv.json").string();
    std::filesystem::create_directories(out_dir);
    write_file_atomically(path, report_json(report));
    fmt::print("cv: {} folds ({}), validation metrics at each fold's last evaluation:\n{}written to {}\n", k,
               base.source, format_report(report), path);
  }
  STRATA_MPI(MPI_Barrier(world));
  return 0;
}

}  // namespace

void add_cv_command(CLI::App& app, MPI_Comm world, Action& action) {
  auto options = std::make_shared<CvOptions>();
  auto* cmd = app.add_subcommand(
      "cv",
      "k-fold cross-validation: train k models, each validated on the fold of the train split it did not see, and "
      "report per-fold and mean +- std metrics");
  cmd->add_option("--config", options->config_path, "TOML config file")->required();
  cmd->add_option("--set", options->sets, "override a config field: section.key=value (repeatable)");
  cmd->add_option("--folds", options->folds, "k (default: data.cv_folds)");
  cmd->add_option("--fold", options->fold, "train only this fold (a Slurm array task); report once all are complete");
  cmd->add_flag("--report", options->report_only, "only collect the folds' results into the report");
  cmd->add_option("--resume", options->resume, "auto: resume each unfinished fold from its latest checkpoint");
  cmd->callback([options, world, &action] { action = [options, world] { return run_cv(*options, world); }; });
}

}  // namespace strata::cli
