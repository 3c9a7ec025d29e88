#include "train/cross_validation.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "train/run_status.hpp"

namespace strata {

std::string fold_dir(const std::string& out_dir, int fold) {
  return (std::filesystem::path(out_dir) / fmt::format("fold-{}", fold)).string();
}

std::vector<std::string> fold_overrides(const std::string& out_dir, int k, int fold) {
  return {fmt::format("data.cv_folds={}", k), fmt::format("data.cv_fold={}", fold),
          "train.out_dir=" + fold_dir(out_dir, fold)};
}

bool fold_complete(const std::string& out_dir, int fold) {
  // Unreadable (being written when the job died): the fold runs (resumes) again.
  return read_run_state(status_path(fold_dir(out_dir, fold))) == "complete";
}

FoldResult read_fold_result(const std::string& out_dir, int fold) {
  const auto path = (std::filesystem::path(fold_dir(out_dir, fold)) / "metrics.jsonl").string();
  std::ifstream in(path);
  STRATA_CHECK(in.good(), "cross-validation fold {}: cannot read '{}' (has the fold been trained?)", fold, path);
  FoldResult result;
  result.fold = fold;
  bool found = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      STRATA_FAIL("'{}': a line is not JSON ({})", path, e.what());
    }
    if (!record.contains("val_loss")) continue;
    found = true;
    result.step = record.value("step", int64_t(0));
    result.metrics.clear();
    for (const auto& [key, value] : record.items())
      if (key.rfind("val_", 0) == 0 && key != "val_rows" && key != "val_tokens" && value.is_number())
        result.metrics[key] = value.get<double>();
  }
  STRATA_CHECK(found,
               "cross-validation fold {}: '{}' holds no validation record (train.eval_every, or the run ended "
               "before its final evaluation)",
               fold, path);
  return result;
}

CrossValidationReport summarize_folds(std::vector<FoldResult> folds) {
  STRATA_CHECK(!folds.empty(), "cross-validation report: no folds");
  CrossValidationReport r;
  r.folds = int(folds.size());
  r.per_fold = std::move(folds);
  for (const auto& [name, unused] : r.per_fold.front().metrics) {
    std::vector<double> values;
    for (const auto& f : r.per_fold)
      if (auto it = f.metrics.find(name); it != f.metrics.end()) values.push_back(it->second);
    if (values.size() != r.per_fold.size()) continue;  // not reported by every fold
    double sum = 0;
    for (double v : values) sum += v;
    const double mean = sum / double(values.size());
    double sq = 0;
    for (double v : values) sq += (v - mean) * (v - mean);
    r.mean[name] = mean;
    r.std[name] = values.size() > 1 ? std::sqrt(sq / double(values.size() - 1)) : 0.0;
  }
  return r;
}

std::string format_report(const CrossValidationReport& r) {
  std::string out = fmt::format("{:<8} {:>7}", "fold", "step");
  for (const auto& [name, unused] : r.mean) out += fmt::format(" {:>16}", name);
  out += "\n";
  for (const auto& f : r.per_fold) {
    out += fmt::format("{:<8} {:>7}", f.fold, f.step);
    for (const auto& [name, unused] : r.mean) out += fmt::format(" {:>16.6g}", f.metrics.at(name));
    out += "\n";
  }
  out += fmt::format("{:<16}", "mean +- std");
  for (const auto& [name, mean] : r.mean)
    out += fmt::format(" {:>16}", fmt::format("{:.4g} +- {:.2g}", mean, r.std.at(name)));
  return out + "\n";
}

std::string report_json(const CrossValidationReport& r) {
  nlohmann::json j;
  j["folds"] = r.folds;
  j["per_fold"] = nlohmann::json::array();
  for (const auto& f : r.per_fold) {
    nlohmann::json row = {{"fold", f.fold}, {"step", f.step}};
    for (const auto& [name, value] : f.metrics) row[name] = value;
    j["per_fold"].push_back(row);
  }
  j["mean"] = r.mean;
  j["std"] = r.std;
  return j.dump(2) + "\n";
}

}  // namespace strata
