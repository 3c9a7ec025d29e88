#include "train/early_stopping.hpp"

#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace strata {

EarlyStopping::EarlyStopping(const TrainConfig& c)
    : metric_(c.early_stop_metric),
      lower_is_better_(c.early_stop_metric == "val_loss"),
      patience_(c.early_stop_patience),
      min_delta_(c.early_stop_min_delta) {}

bool EarlyStopping::observe(int64_t step, double value) {
  STRATA_CHECK(enabled(), "early stopping: no train.early_stop_metric to observe");
  // A non-finite metric is never an improvement.
  const bool better =
      std::isfinite(value) &&
      (!state_.has_best || (lower_is_better_ ? value < state_.best - min_delta_ : value > state_.best + min_delta_));
  if (better) {
    state_.has_best = true;
    state_.best = value;
    state_.best_step = step;
    state_.bad_evals = 0;
  } else {
    ++state_.bad_evals;
  }
  return better;
}

double early_stop_value(const ClassificationMetrics& m, const std::string& metric) {
  if (metric.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (metric == "val_loss") return m.loss;
  if (metric == "val_accuracy") return m.accuracy;
  if (metric == "val_macro_f1") return m.macro.f1;
  if (metric == "val_weighted_f1") return m.weighted.f1;
  for (const auto& [k, accuracy] : m.top_k)
    if (metric == "val_top" + std::to_string(k)) return accuracy;
  STRATA_FAIL("train.early_stop_metric = '{}': the evaluation does not report it ({} classes)", metric, m.classes);
}

}  // namespace strata
