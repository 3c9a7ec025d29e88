#pragma once
// Validation loss over a fixed set of windows, split over the data-parallel ranks and run forward only through
// the pipeline: the windows evaluated and the result do not depend on the layout. The set is the first
// `max_batches` global batches of the split in order (0: every whole global batch); chunk c of model.batch()
// windows goes to dp rank c % dp.
#include <cstdint>

#include <vector>

#include "comm/communicator.hpp"
#include "data/array_dataset.hpp"
#include "data/window_source.hpp"
#include "parallel/pipeline_schedule.hpp"
#include "train/metrics.hpp"

namespace strata {

struct EvalResult {
  double loss = 0;
  int64_t tokens = 0;
};

// Every rank of the job calls (every stage runs each chunk); the result is the same on every rank.
template <class T>
EvalResult evaluate(PipelineRunner<T>& runner, Model<T>& model, const data::WindowSource& split, int64_t max_batches,
                    int global_batch, Communicator& dp);

// The windows evaluate() reads, each token's log-probability of its target under the model: [tokens] in split
// order (window-major), the same on every rank. For ensembles of language models (train/ensemble.hpp).
std::vector<double> target_log_probs(PipelineRunner<float>& runner, Model<float>& model,
                                     const data::WindowSource& split, int64_t max_batches, int global_batch,
                                     Communicator& dp);

// A classifier on the first max_samples samples of an array split (0: all), in order: chunk c of model.batch()
// samples goes to dp rank c % dp (the last chunk padded, the padding not counted), forward only through the
// pipeline; the counts add up over every rank, so the metrics do not depend on the layout. With
// keep_predictions, every rank also gets each row's predicted class, target and logits, in split order.
struct ClassifierEvalResult {
  ClassificationMetrics metrics;
  std::vector<int32_t> predicted, targets;  // [rows] (keep_predictions)
  std::vector<float> scores;                // [rows, classes] logits (keep_predictions)
};

ClassifierEvalResult evaluate_classifier(PipelineRunner<float>& runner, Model<float>& model,
                                         const data::ArraySplit& split, bool normalize, int64_t max_samples,
                                         Communicator& dp, bool keep_predictions = false);

}  // namespace strata
