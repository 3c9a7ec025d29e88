#pragma once
// Learning-rate schedules: linear warm-up, then constant, cosine or linear decay to min_lr.
#include <cstdint>

#include "core/config.hpp"

namespace strata {

// The learning rate of 0-based `step` out of config.steps.
double learning_rate(const TrainConfig& config, int64_t step);

}  // namespace strata
