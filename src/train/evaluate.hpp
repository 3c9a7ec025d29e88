#pragma once
// Validation loss over a fixed set of windows, split over the data-parallel ranks and run forward only through
// the pipeline: the windows evaluated and the result do not depend on the layout. The set is the first
// `max_batches` global batches of the split in order (0: every whole global batch); chunk c of model.batch()
// windows goes to dp rank c % dp.
#include <cstdint>

#include "comm/communicator.hpp"
#include "data/window_source.hpp"
#include "parallel/pipeline_schedule.hpp"

namespace strata {

struct EvalResult {
  double loss = 0;
  int64_t tokens = 0;
};

// Every rank of the job calls (every stage runs each chunk); the result is the same on every rank.
template <class T>
EvalResult evaluate(PipelineRunner<T>& runner, Model<T>& model, const data::WindowSource& split, int64_t max_batches,
                    int global_batch, Communicator& dp);

}  // namespace strata
