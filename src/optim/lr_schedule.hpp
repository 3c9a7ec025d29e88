#pragma once
// Learning-rate schedules: a linear warm-up over train.warmup_steps (from lr / W at step 0 to lr at step W - 1),
// then, with k = step - W the steps since warm-up, S = train.steps and D = max(1, S - W - 1):
//   constant         lr
//   cosine           min_lr + (lr - min_lr) (1 + cos(pi min(k / D, 1))) / 2           (min_lr at the last step)
//   linear           min_lr + (lr - min_lr) (1 - min(k / D, 1))
//   step             lr gamma^floor(k / lr_step_size)                                   (torch StepLR)
//   multistep        lr gamma^(number of lr_milestones <= step)    (milestones in steps) (torch MultiStepLR)
//   exponential      lr gamma^k                                                         (torch ExponentialLR)
//   cosine_restarts  cosine from lr to min_lr over cycles of lr_restart_period, each lr_restart_mult times longer
//                    than the last, restarting at lr               (torch CosineAnnealingWarmRestarts)
//   wsd              warm-up, stable at lr, then the last lr_decay_fraction of the steps (Dd = round(S fraction),
//                    at least 1) linear down to min_lr, reached at the last step: lr - (lr - min_lr) (j + 1) / Dd
//                    at the j-th decay step
// Every schedule is a pure function of the step, so a resumed run continues it exactly. core/config.cpp checks the
// fields.
#include <cstdint>

#include "core/config.hpp"

namespace strata {

// The learning rate of 0-based `step` out of config.steps.
double learning_rate(const TrainConfig& config, int64_t step);

}  // namespace strata
