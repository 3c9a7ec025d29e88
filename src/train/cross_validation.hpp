#pragma once
// k-fold cross-validation (`strata cv`, docs/training.md): fold i of k trains on the train split without fold i and
// validates on it (data.cv_folds, data.cv_fold; data/folds.hpp), in <train.out_dir>/fold-<i>; the report collects
// each fold's final validation metrics and their mean and standard deviation.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata {

// --set overrides that make a config fold `fold` of k: data.cv_folds, data.cv_fold and train.out_dir = fold_dir.
std::vector<std::string> fold_overrides(const std::string& out_dir, int k, int fold);
std::string fold_dir(const std::string& out_dir, int fold);
// Whether the fold's run finished (its status.json says complete): `strata cv` does not train it again.
bool fold_complete(const std::string& out_dir, int fold);

struct FoldResult {
  int fold = 0;
  int64_t step = 0;                       // the step of the evaluation reported
  std::map<std::string, double> metrics;  // val_loss and, for classifiers, val_accuracy, val_top3, val_macro_f1, ...
};

struct CrossValidationReport {
  int folds = 0;
  std::vector<FoldResult> per_fold;
  // Over the folds, per metric: the mean and the sample standard deviation (n - 1 in the denominator).
  std::map<std::string, double> mean, std;
};

// The fold's last validation record in <fold_dir>/metrics.jsonl. Throws naming the file when the fold has not run
// or has no validation.
FoldResult read_fold_result(const std::string& out_dir, int fold);
// Mean and standard deviation of every metric all folds report. Throws on an empty list.
CrossValidationReport summarize_folds(std::vector<FoldResult> folds);
// A table: one row per fold, then mean and std, one column per metric.
std::string format_report(const CrossValidationReport& report);
// The report as JSON: {"folds": k, "per_fold": [{"fold", "step", metrics...}], "mean": {...}, "std": {...}}.
std::string report_json(const CrossValidationReport& report);

}  // namespace strata
