// The step guard's bookkeeping (train/step_guard.hpp): which steps are bad (non-finite, z-score spikes against a
// double reference), when a rollback is due and allowed, where batches start past skipped intervals, and the state
// a checkpoint carries (restore vs restore_window).
#include "train/step_guard.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.hpp"

namespace strata {
namespace {

GuardConfig guarded(double spike_z = 0, int64_t window = 4, int64_t rollback_after = 3, int64_t max_rollbacks = 1) {
  GuardConfig c;
  c.spike_z = spike_z;
  c.window = window;
  c.rollback_after = rollback_after;
  c.max_rollbacks = max_rollbacks;
  return c;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(StepGuard, NonFiniteLossOrNormIsSkippedFiniteIsNot) {
  StepGuard g(guarded(), 8);
  EXPECT_FALSE(g.judge(1, 0, 2.0, 1.0).skip);
  const auto nan_loss = g.judge(2, 8, kNaN, 1.0);
  EXPECT_TRUE(nan_loss.skip);
  EXPECT_EQ(nan_loss.cause, "loss is nan");
  const auto inf_norm = g.judge(3, 16, 2.0, kInf);
  EXPECT_TRUE(inf_norm.skip);
  EXPECT_EQ(inf_norm.cause, "gradient norm is inf");
  EXPECT_EQ(g.first_bad_step(), 2);
  EXPECT_FALSE(g.rollback_due());  // two in a row of three
  EXPECT_FALSE(g.judge(4, 24, 2.0, 1.0).skip);
  EXPECT_EQ(g.first_bad_step(), 0);  // an accepted step ends the run
  EXPECT_EQ(g.skipped_steps(), 2);
  ASSERT_EQ(g.events().size(), 2u);
  EXPECT_EQ(g.events()[1]["step"], 3);
  EXPECT_EQ(g.events()[1]["batch_position"], 16);
  EXPECT_TRUE(g.events()[1]["grad_norm"].is_null());  // JSON has no infinity
}

TEST(StepGuard, SpikesAreZScoresAboveTheThresholdOverAFullWindow) {
  // Window 4, threshold 3: the population z of the new value against the last four accepted values.
  StepGuard g(guarded(3.0, 4), 1);
  const std::vector<double> losses{2.0, 2.2, 1.8, 2.1};
  for (size_t i = 0; i < losses.size(); ++i) {
    // Not full yet: even a huge value is accepted.
    EXPECT_FALSE(g.judge(int64_t(i) + 1, int64_t(i), losses[i], 1.0 + 0.1 * double(i)).skip);
  }
  double mean = 0, var = 0;
  for (double v : losses) mean += v / 4;
  for (double v : losses) var += (v - mean) * (v - mean) / 4;
  const double sd = std::sqrt(var);
  const double just_below = mean + 2.99 * sd, above = mean + 3.01 * sd;
  EXPECT_FALSE(g.judge(5, 4, just_below, 1.2).skip);  // accepted: enters the window (2.2, 1.8, 2.1, just_below)
  StepGuard h(guarded(3.0, 4), 1);
  for (size_t i = 0; i < losses.size(); ++i) h.judge(int64_t(i) + 1, int64_t(i), losses[i], 1.0);
  const auto v = h.judge(5, 4, above, 1.0);
  EXPECT_TRUE(v.skip);
  EXPECT_NE(v.cause.find("loss spike"), std::string::npos) << v.cause;
  EXPECT_NE(v.cause.find("z = 3.0"), std::string::npos) << v.cause;
  // A falling loss is never a spike; a gradient-norm jump is (its window: 1, 1, 1, 1 has sd 0: no z, so use another).
  StepGuard n(guarded(3.0, 4), 1);
  const std::vector<double> norms{1.0, 1.1, 0.9, 1.05};
  for (size_t i = 0; i < norms.size(); ++i) n.judge(int64_t(i) + 1, int64_t(i), 2.0, norms[i]);
  EXPECT_FALSE(n.judge(5, 4, 0.1, 1.0).skip);
  const auto jump = n.judge(6, 5, 2.0, 50.0);
  EXPECT_TRUE(jump.skip);
  EXPECT_NE(jump.cause.find("gradient norm spike"), std::string::npos) << jump.cause;
  // spike_z = 0: off.
  StepGuard off(guarded(0, 2), 1);
  off.judge(1, 0, 1.0, 1.0);
  off.judge(2, 1, 1.1, 1.0);
  EXPECT_FALSE(off.judge(3, 2, 1e6, 1e6).skip);
}

TEST(StepGuard, RollbackDueAfterTheRunAllowedUpToMax) {
  StepGuard g(guarded(0, 4, /*rollback_after=*/2, /*max_rollbacks=*/1), 8);
  g.judge(1, 0, 2.0, 1.0);
  g.judge(2, 8, kNaN, 1.0);
  EXPECT_FALSE(g.rollback_due());
  g.judge(3, 16, kNaN, 1.0);
  EXPECT_TRUE(g.rollback_due());
  EXPECT_EQ(g.first_bad_step(), 2);
  g.record_rollback(3, 1, "ckpt/step-00000001.h5");
  EXPECT_EQ(g.rollbacks(), 1);
  EXPECT_FALSE(g.rollback_due());
  // The bad run's batches [8, 16) and [16, 24) are skipped: merged into one interval.
  ASSERT_EQ(g.skipped_intervals().size(), 1u);
  EXPECT_EQ(g.skipped_intervals()[0], std::make_pair(int64_t(8), int64_t(24)));
  EXPECT_EQ(g.events().back()["event"], "rollback");
  EXPECT_EQ(g.events().back()["to_step"], 1);
  // Two more bad steps: a second rollback is one too many.
  g.judge(4, 32, kNaN, 1.0);
  g.judge(5, 40, kNaN, 1.0);
  EXPECT_TRUE(g.rollback_due());
  try {
    g.check_rollback_allowed(5);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("guard.max_rollbacks = 1"), std::string::npos) << what;
    EXPECT_NE(what.find("4 .. 5"), std::string::npos) << what;
  }
  // rollback_after = 0: never due.
  StepGuard never(guarded(0, 4, 0), 8);
  for (int s = 1; s <= 10; ++s) never.judge(s, 8 * (s - 1), kNaN, kNaN);
  EXPECT_FALSE(never.rollback_due());
}

TEST(StepGuard, AdvanceSkipsTheSkippedIntervals) {
  GuardConfig c = guarded();
  c.skip_batches = {2, 3, 7};  // batch size 10: [20, 40) and [70, 80)
  StepGuard g(c, 10);
  // From a fresh start: batches 0, 1, then 4, 5, 6, then 8.
  const std::vector<int64_t> expected{0, 10, 40, 50, 60, 80, 90};
  for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(g.advance(0, int64_t(k)), expected[k]) << k;
  // From a checkpoint whose next batch is skipped itself, and from one past every interval.
  EXPECT_EQ(g.advance(20, 0), 40);
  EXPECT_EQ(g.advance(40, 3), 80);
  EXPECT_EQ(g.advance(100, 2), 120);
  // A rollback adds an interval: batches after it move on, earlier ones stay.
  g.judge(1, 80, kNaN, 1.0);
  g.judge(2, 90, kNaN, 1.0);
  g.judge(3, 100, kNaN, 1.0);
  g.record_rollback(3, 0, "x");
  EXPECT_EQ(g.advance(0, 4), 60);
  EXPECT_EQ(g.advance(0, 5), 110);
}

TEST(StepGuard, StateRoundTripsAndRestoreWindowKeepsTheHistory) {
  GuardConfig c = guarded(3.0, 3, 2, 2);
  StepGuard g(c, 4);
  g.judge(1, 0, 2.5, 1.0);
  g.judge(2, 4, 2.25, 0.5);
  const std::string at_two = g.state_json();
  g.judge(3, 8, kNaN, 1.0);
  g.judge(4, 12, kNaN, 1.0);
  g.record_rollback(4, 2, "step-2");
  g.restore_window(at_two, "step-2");
  EXPECT_EQ(g.rollbacks(), 1);  // kept: the history
  EXPECT_EQ(g.skipped_intervals().size(), 1u);
  EXPECT_EQ(g.first_bad_step(), 0);  // the window's part came back from the checkpoint
  // The full state through JSON: a restored guard judges as the original (same window, same verdicts).
  g.judge(3, 16, 2.0, 0.75);
  StepGuard copy(c, 4);
  copy.restore(g.state_json(), "test");
  EXPECT_EQ(copy.state_json(), g.state_json());
  EXPECT_EQ(copy.advance(0, 2), g.advance(0, 2));
  for (double loss : {2.1, 9.0, 2.2}) {
    const auto a = g.judge(4, 20, loss, 0.8), b = copy.judge(4, 20, loss, 0.8);
    EXPECT_EQ(a.skip, b.skip);
    EXPECT_EQ(a.cause, b.cause);
  }
  // A checkpoint without guard state: an empty window.
  StepGuard fresh(c, 4);
  fresh.restore("", "old.h5");
  EXPECT_EQ(fresh.state_json(), StepGuard(c, 4).state_json());
  // Damaged state names the file and the attribute.
  try {
    fresh.restore("{\"version\": 1, \"losses\": 3}", "bad.h5");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.h5: attribute 'guard'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace strata
