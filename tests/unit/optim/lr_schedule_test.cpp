// learning_rate (optim/lr_schedule.hpp) against torch.optim.lr_scheduler, values printed by Debian's PyTorch 1.13
// (tests/reference/lr_schedule_reference.py's torch_rates, which also runs live as reference.lr_schedule.pytorch).
// The matching torch construction, with W = warmup_steps, S = steps, D = max(1, S - W - 1):
//   warm-up LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1), then from step W (SequentialLR
//   milestones=[W]) ConstantLR(factor=1, total_iters=0) | CosineAnnealingLR(T_max=D, eta_min=min_lr) |
//   LinearLR(start_factor=1, end_factor=min_lr/lr, total_iters=D).
// Strata's step s is the rate for the (s+1)-th optimizer.step(), after s scheduler.step() calls.
#include "optim/lr_schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace strata {
namespace {

TrainConfig schedule(const std::string& name, double lr, double min_lr, int64_t warmup, int64_t steps) {
  TrainConfig c;
  c.lr_schedule = name;
  c.lr = lr, c.min_lr = min_lr, c.warmup_steps = warmup, c.steps = steps;
  return c;
}

void expect_rates(const TrainConfig& c, const std::vector<double>& torch) {
  ASSERT_EQ(int64_t(torch.size()), c.steps);
  for (int64_t s = 0; s < c.steps; ++s) {
    const double ours = learning_rate(c, s), ref = torch[size_t(s)];
    EXPECT_NEAR(ours, ref, 1e-12 * std::abs(ref))
        << c.lr_schedule << " warm-up " << c.warmup_steps << " of " << c.steps << " steps: step " << s;
  }
}

TEST(LrSchedule, CosineWithWarmUpMatchesTorch) {
  expect_rates(schedule("cosine", 1e-3, 1e-4, 3, 10),
               {0.0003333333333333333, 0.0006666666666666666, 0.001, 0.001, 0.0009397114317029975,
                0.0007750000000000001, 0.00055, 0.00032500000000000015, 0.0001602885682970026, 0.0001});
  expect_rates(schedule("cosine", 0.5, 0.0, 0, 5), {0.5, 0.42677669529663687, 0.25, 0.07322330470336313, 0.0});
  expect_rates(schedule("cosine", 1e-3, 1e-4, 1, 4), {0.001, 0.001, 0.00055, 0.0001});
}

TEST(LrSchedule, LinearWithWarmUpMatchesTorch) {
  expect_rates(schedule("linear", 1e-3, 1e-4, 3, 10),
               {0.0003333333333333333, 0.0006666666666666666, 0.001, 0.001, 0.00085, 0.0006999999999999999,
                0.0005499999999999999, 0.00039999999999999996, 0.00025, 0.0001});
  expect_rates(schedule("linear", 0.5, 0.0, 0, 5), {0.5, 0.375, 0.25, 0.125, 0.0});
}

TEST(LrSchedule, ConstantWithWarmUpMatchesTorch) {
  expect_rates(schedule("constant", 1e-3, 1e-4, 3, 6),
               {0.0003333333333333333, 0.0006666666666666666, 0.001, 0.001, 0.001, 0.001});
}

TEST(LrSchedule, EndpointsAndBeyondTheLastStep) {
  for (const std::string name : {"cosine", "linear"}) {
    const TrainConfig c = schedule(name, 2e-3, 2e-4, 4, 30);
    EXPECT_DOUBLE_EQ(learning_rate(c, 0), 2e-3 / 4) << name;
    EXPECT_DOUBLE_EQ(learning_rate(c, 3), 2e-3) << name;   // the last warm-up step reaches lr
    EXPECT_DOUBLE_EQ(learning_rate(c, 4), 2e-3) << name;   // decay starts from lr
    EXPECT_DOUBLE_EQ(learning_rate(c, 29), 2e-4) << name;  // min_lr at the last step
    // Past the last step Strata holds min_lr (torch's CosineAnnealingLR would rise again past T_max).
    EXPECT_DOUBLE_EQ(learning_rate(c, 30), 2e-4) << name;
    EXPECT_DOUBLE_EQ(learning_rate(c, 1000), 2e-4) << name;
    for (int64_t s = 5; s < 30; ++s) EXPECT_LT(learning_rate(c, s), learning_rate(c, s - 1)) << name << " step " << s;
  }
  // Cosine and linear decay meet half-way.
  EXPECT_NEAR(learning_rate(schedule("cosine", 1.0, 0.0, 0, 11), 5), 0.5, 1e-15);
  EXPECT_NEAR(learning_rate(schedule("linear", 1.0, 0.0, 0, 11), 5), 0.5, 1e-15);
}

TrainConfig with(TrainConfig c, void (*set)(TrainConfig&)) {
  set(c);
  return c;
}

// The schedules torch has, with values printed by torch.optim.lr_scheduler (Debian's PyTorch 1.13) through
// lr_schedule_reference.py's construction; wsd by its formula.
TEST(LrSchedule, StepMultistepAndExponentialMatchTorch) {
  expect_rates(with(schedule("step", 1.0, 0.0, 2, 9), [](TrainConfig& c) { c.lr_gamma = 0.5, c.lr_step_size = 3; }),
               {0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25});
  expect_rates(with(schedule("multistep", 1.0, 0.0, 1, 8),
                    [](TrainConfig& c) {
                      c.lr_gamma = 0.1, c.lr_milestones = {3, 6};
                    }),
               {1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002});
  expect_rates(with(schedule("exponential", 1.0, 0.0, 0, 4), [](TrainConfig& c) { c.lr_gamma = 0.5; }),
               {1.0, 0.5, 0.25, 0.125});
}

TEST(LrSchedule, CosineRestartsMatchTorchAndRestartAtEachCycle) {
  const TrainConfig c = with(schedule("cosine_restarts", 1.0, 0.0, 0, 10),
                             [](TrainConfig& t) { t.lr_restart_period = 2, t.lr_restart_mult = 2; });
  expect_rates(c, {1.0, 0.5, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 1.0, 0.9619397662556434,
                   0.8535533905932737, 0.6913417161825449});
  // Cycles of 3, 6, 12 after a 4-step warm-up: back at lr at each start, strictly decreasing within a cycle.
  const TrainConfig d = with(schedule("cosine_restarts", 2.0, 0.5, 4, 40),
                             [](TrainConfig& t) { t.lr_restart_period = 3, t.lr_restart_mult = 2; });
  for (int64_t start : {4, 7, 13, 25}) EXPECT_DOUBLE_EQ(learning_rate(d, start), 2.0) << "step " << start;
  for (int64_t s = 26; s < 37; ++s) EXPECT_LT(learning_rate(d, s), learning_rate(d, s - 1)) << "step " << s;
  EXPECT_GT(learning_rate(d, 36), 0.5);
}

TEST(LrSchedule, WarmupStableDecayHoldsThenReachesMinLrAtTheLastStep) {
  const TrainConfig c =
      with(schedule("wsd", 1.0, 0.1, 2, 12), [](TrainConfig& t) { t.lr_decay_fraction = 0.25; });  // 3 decay steps
  expect_rates(c, {0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.4, 0.1});
  EXPECT_EQ(c.wsd_decay_steps(), 3);
  // A tiny fraction still decays over one step: min_lr at the last.
  const TrainConfig d = with(schedule("wsd", 1.0, 0.2, 0, 10), [](TrainConfig& t) { t.lr_decay_fraction = 0.01; });
  EXPECT_EQ(learning_rate(d, 8), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(d, 9), 0.2);
}

}  // namespace
}  // namespace strata
