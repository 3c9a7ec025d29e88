#pragma once
// Autoregressive sampling with temperature, drawing from the counter-based RNG (reproducible).
#include <cstdint>
#include <vector>

#include "nn/gpt.hpp"

namespace strata {

// Continues `prompt` (at least one id) by `count` tokens with a batch-1 model; the context slides once it
// exceeds seq_len. Returns only the new tokens.
template <class T>
std::vector<int32_t> generate(Gpt<T>& model, std::vector<int32_t> prompt, int64_t count, double temperature,
                              uint64_t seed);

}  // namespace strata
