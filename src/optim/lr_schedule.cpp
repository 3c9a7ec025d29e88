#include "optim/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace strata {

namespace {

double cosine_between(double high, double low, double progress) {
  return low + (high - low) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// Position in the current cycle of cosine_restarts: (steps into the cycle, cycle length).
std::pair<double, double> restart_cycle(int64_t k, int64_t period, int64_t mult) {
  if (mult == 1) return {double(k % period), double(period)};
  // Cycles of period * mult^i: find the one holding k by walking (cycles grow geometrically: few iterations).
  int64_t start = 0, length = period;
  while (k >= start + length) {
    start += length;
    length *= mult;
  }
  return {double(k - start), double(length)};
}

}  // namespace

double learning_rate(const TrainConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) return c.lr * double(step + 1) / double(c.warmup_steps);
  const int64_t k = step - c.warmup_steps;
  const std::string& s = c.lr_schedule;
  if (s == "constant") return c.lr;
  if (s == "step") return c.lr * std::pow(c.lr_gamma, double(k / c.lr_step_size));
  if (s == "multistep") {
    const auto passed =
        std::upper_bound(c.lr_milestones.begin(), c.lr_milestones.end(), step) - c.lr_milestones.begin();
    return c.lr * std::pow(c.lr_gamma, double(passed));
  }
  if (s == "exponential") return c.lr * std::pow(c.lr_gamma, double(k));
  if (s == "cosine_restarts") {
    const auto [at, length] = restart_cycle(k, c.lr_restart_period, c.lr_restart_mult);
    return cosine_between(c.lr, c.min_lr, at / length);
  }
  if (s == "wsd") {
    const int64_t decay = c.wsd_decay_steps(), first = c.steps - decay;
    if (step < first) return c.lr;
    return c.lr - (c.lr - c.min_lr) * double(step - first + 1) / double(decay);
  }
  const int64_t decay_steps = std::max<int64_t>(1, c.steps - c.warmup_steps - 1);
  const double progress = std::clamp(double(k) / double(decay_steps), 0.0, 1.0);
  if (s == "cosine") return cosine_between(c.lr, c.min_lr, progress);
  STRATA_CHECK(s == "linear", "train.lr_schedule = '{}': unknown schedule", s);
  return c.min_lr + (c.lr - c.min_lr) * (1.0 - progress);
}

}  // namespace strata
