// Prints Strata's learning rate (optim/lr_schedule.hpp) for each 0-based step of one schedule, one
// "step lr" line per step with 17 significant digits, for lr_schedule_reference.py to compare with
// torch.optim.lr_scheduler.
// Usage: lr_schedule_dump --schedule NAME --lr X --min-lr Y --warmup W --steps N [--gamma G] [--step-size K]
//          [--milestones M1,M2,...] [--restart-period P] [--restart-mult R] [--decay-fraction F] [--shift S]
//   --shift S prints step s's line with the rate of step s + S (the checker's self-test: must be rejected).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "core/config.hpp"
#include "optim/lr_schedule.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lr_schedule_dump"};
  strata::TrainConfig c;
  int64_t shift = 0;
  app.add_option("--schedule", c.lr_schedule)->required();
  app.add_option("--lr", c.lr)->required();
  app.add_option("--min-lr", c.min_lr)->required();
  app.add_option("--warmup", c.warmup_steps)->required();
  app.add_option("--steps", c.steps)->required();
  app.add_option("--gamma", c.lr_gamma);
  app.add_option("--step-size", c.lr_step_size);
  app.add_option("--milestones", c.lr_milestones)->delimiter(',');
  app.add_option("--restart-period", c.lr_restart_period);
  app.add_option("--restart-mult", c.lr_restart_mult);
  app.add_option("--decay-fraction", c.lr_decay_fraction);
  app.add_option("--shift", shift);
  CLI11_PARSE(app, argc, argv);
  for (int64_t step = 0; step < c.steps; ++step)
    std::printf("%lld %.17g\n", static_cast<long long>(step), strata::learning_rate(c, step + shift));
  return 0;
}
