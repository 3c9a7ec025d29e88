#pragma once
// The model kinds (config `model.kind`) behind one interface (nn/model.hpp): what the trainer, evaluation, weights
// files and checkpoints ask of a kind without building it, and building this rank's part of it.
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "nn/model.hpp"
#include "parallel/tensor_parallel.hpp"

namespace strata {

// The tensors held at `placement` (names, global shapes, this rank's shapes and splits), in buffer order. At the
// default placement (one rank): every tensor of the model, in the order files store them.
std::vector<TensorSpec> model_tensors(const ModelConfig& model, const Placement& placement = {});

// Throws, naming `source` and the fields, unless the model splits over tp tensor-parallel ranks and pp stages.
void check_model_layout(const ModelConfig& model, int tp, int pp, const std::string& source);

// Layers per pipeline stage (a pure function of the model and the number of stages).
std::vector<int> stage_layer_counts(const ModelConfig& model, int stages);

struct ModelSize {
  int64_t parameters = 0;       // every tensor once
  int64_t non_embedding = 0;    // without token and position embeddings (the N of 6N)
  double flops_per_sample = 0;  // forward + backward (6N per token plus attention for a GPT)
};
ModelSize model_size(const ModelConfig& model);

// The drop probability of each of the kind's dropout sites (train.dropout, and for a gpt the per-site fields that
// override it).
DropoutRates dropout_rates(const ModelConfig& model, const TrainConfig& train);

// This rank's part of the model for microbatches of `batch` samples, on `params` (laid out by model_tensors for
// `placement`); tp is the tensor-parallel group (it must outlive the model).
template <class T>
std::unique_ptr<Model<T>> make_model(const ModelConfig& model, int batch, std::shared_ptr<ParamBuffer<T>> params,
                                     const Placement& placement, TensorParallel<T>& tp);

}  // namespace strata
