#pragma once
// Autoregressive sampling with temperature, drawing from the counter-based RNG (reproducible), forward only
// through the pipeline runner.
#include <cstdint>
#include <vector>

#include "parallel/pipeline_schedule.hpp"
#include "parallel/tensor_parallel.hpp"

namespace strata {

// Continues `prompt` (at least one id) by `count` tokens with a batch-1 language model (its runner and its
// tensor-parallel group); the context slides once it exceeds seq_len. Every rank of the model's pipeline and
// tensor-parallel groups calls and gets the same tokens. Returns only the new tokens.
template <class T>
std::vector<int32_t> generate(PipelineRunner<T>& runner, Model<T>& model, TensorParallel<T>& tp,
                              std::vector<int32_t> prompt, int64_t count, double temperature, uint64_t seed);

}  // namespace strata
