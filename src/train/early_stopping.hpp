#pragma once
// Early stopping on a validation metric (train.early_stop_metric): tracks the best value and the evaluations since
// it improved; the trainer saves the best weights at each improvement and stops once `patience` evaluations in a row
// brought none. The state travels in checkpoints, so a resumed run decides as the uninterrupted one would.
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "train/metrics.hpp"

namespace strata {

struct EarlyStopState {
  bool has_best = false;
  double best = 0;
  int64_t best_step = 0;
  int64_t bad_evals = 0;  // evaluations since the last improvement
};

class EarlyStopping {
 public:
  explicit EarlyStopping(const TrainConfig& config);

  bool enabled() const { return !metric_.empty(); }
  const std::string& metric() const { return metric_; }
  bool lower_is_better() const { return lower_is_better_; }

  // Records the metric of the evaluation after `step`; returns whether it is the new best (better than the best by
  // more than min_delta, or the first).
  bool observe(int64_t step, double value);
  // patience evaluations in a row without improvement (never with patience 0: the best is only tracked).
  bool should_stop() const { return patience_ > 0 && state_.bad_evals >= patience_; }

  const EarlyStopState& state() const { return state_; }
  void restore(const EarlyStopState& state) { state_ = state; }

 private:
  std::string metric_;
  bool lower_is_better_ = true;
  int64_t patience_ = 0;
  double min_delta_ = 0;
  EarlyStopState state_;
};

// The value of `metric` (train.early_stop_metric) in a classifier's evaluation; NaN for an empty metric. Throws
// when the evaluation lacks it (val_top5 with fewer than 5 classes).
double early_stop_value(const ClassificationMetrics& m, const std::string& metric);

}  // namespace strata
