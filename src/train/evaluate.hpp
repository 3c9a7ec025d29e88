#pragma once
// Validation loss: mean cross-entropy over the first `max_batches` batches of the split in order
// (0: the whole split), each window counted once.
#include <cstdint>

#include "data/window_source.hpp"
#include "nn/gpt.hpp"

namespace strata {

struct EvalResult {
  double loss = 0;
  int64_t tokens = 0;
};

template <class T>
EvalResult evaluate(Gpt<T>& model, const data::WindowSource& split, int64_t max_batches);

}  // namespace strata
