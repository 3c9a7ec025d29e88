#pragma once
// The NaN/Inf and spike guard (docs/monitoring.md). Before each update the trainer shows the guard the step's loss and
// gradient norm (the same numbers on every rank); the guard's verdict is to apply the update or to skip it, so every
// rank skips together. A step is bad when either value is not finite, or (guard.spike_z > 0) when either lies more
// than spike_z standard deviations above the mean of the last guard.window accepted steps. After
// guard.rollback_after bad steps in a row the trainer rolls back to its newest checkpoint before them, and the batches
// of those steps are skipped from then on: the guard keeps the skipped batches as intervals of the global sample
// order, and maps "the k-th batch after position p" past them, so a rerun or a resumed run reads the same batches.
// Its whole state travels in checkpoints (state_json / restore), so a resumed run judges exactly as the uninterrupted
// one would.
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"

namespace strata {

struct GuardVerdict {
  bool skip = false;
  std::string cause;  // why it is skipped: "loss is nan", "gradient norm spike: z = 8.1 over the last 100 steps", ...
};

class StepGuard {
 public:
  // batch_size: the global batch, in samples (the unit of the skipped intervals).
  StepGuard(const GuardConfig& config, int64_t batch_size);

  // The verdict on step `step` (1-based) whose batch starts at `position` of the global sample order. An accepted
  // step enters the window and ends a run of bad steps; a skipped one extends the run and is recorded as an event.
  GuardVerdict judge(int64_t step, int64_t position, double loss, double grad_norm);
  // Whether the bad steps in a row call for a rollback now.
  bool rollback_due() const;
  // The first step of the current run of bad steps (0 when there is none).
  int64_t first_bad_step() const { return bad_steps_.empty() ? 0 : bad_steps_.front().first; }
  // Throws (the run stops) when a rollback at `at_step` would be rollback guard.max_rollbacks + 1.
  void check_rollback_allowed(int64_t at_step) const;
  // A rollback to checkpoint step `to_step` at step `at_step`: the bad run's batches join the skipped ones (checks
  // check_rollback_allowed first). The caller has loaded the checkpoint and then restore_window()s the guard from it.
  void record_rollback(int64_t at_step, int64_t to_step, const std::string& checkpoint);

  // Where the batch of the step `batches` steps after the one at `position` starts, skipping the skipped intervals
  // (position itself must be a step's start: a checkpoint's consumed_samples or a fresh run's 0).
  int64_t advance(int64_t position, int64_t batches) const;

  // The whole state as JSON (the checkpoint attribute `guard`), and back. restore() replaces everything (a resume);
  // restore_window() only what the checkpoint's step decides (the window and the bad run), keeping the skipped
  // batches and the events (a rollback: they are why it happened).
  std::string state_json() const;
  void restore(const std::string& json, const std::string& where);
  void restore_window(const std::string& json, const std::string& where);

  // Every skip and rollback so far: [{"step", "event": "skip"|"rollback", ...}], for <out_dir>/guard.json.
  const nlohmann::json& events() const { return events_; }
  const std::vector<std::pair<int64_t, int64_t>>& skipped_intervals() const { return skipped_; }
  int64_t rollbacks() const { return rollbacks_; }
  int64_t skipped_steps() const { return skipped_steps_; }

 private:
  void add_skipped(int64_t begin, int64_t end);  // keeps skipped_ sorted and disjoint
  void add_configured_skips();
  std::string spike(const char* what, double value, const std::deque<double>& window) const;

  GuardConfig config_;
  int64_t batch_size_;
  std::deque<double> losses_, norms_;                   // the last `window` accepted steps'
  std::vector<std::pair<int64_t, int64_t>> bad_steps_;  // the current run of bad steps: (step, batch position)
  std::vector<std::pair<int64_t, int64_t>> skipped_;    // [begin, end) of the sample order, sorted, disjoint
  int64_t rollbacks_ = 0, skipped_steps_ = 0;
  nlohmann::json events_ = nlohmann::json::array();
};

}  // namespace strata
