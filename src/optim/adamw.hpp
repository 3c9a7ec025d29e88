#pragma once
// AdamW over a ParamBuffer: decay on 2-D tensors only (TensorSpec::decay), one step counter.
#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

template <class T>
class AdamW {
 public:
  explicit AdamW(const TrainConfig& config) : config_(config) {}
  // Applies one update with learning rate `lr` to every tensor from its gradient.
  void step(ParamBuffer<T>& params, double lr);
  long steps_taken() const { return step_; }

 private:
  TrainConfig config_;
  long step_ = 0;
};

}  // namespace strata
