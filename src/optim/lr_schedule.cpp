#include "optim/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace strata {

double learning_rate(const TrainConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) return c.lr * double(step + 1) / double(c.warmup_steps);
  if (c.lr_schedule == "constant") return c.lr;
  const int64_t decay_steps = std::max<int64_t>(1, c.steps - c.warmup_steps - 1);
  const double progress = std::clamp(double(step - c.warmup_steps) / double(decay_steps), 0.0, 1.0);
  const double shape = c.lr_schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return c.min_lr + (c.lr - c.min_lr) * shape;
}

}  // namespace strata
