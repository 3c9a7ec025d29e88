#include "models/model_factory.hpp"

#include "core/error.hpp"
#include "models/cnn.hpp"
#include "models/gpt.hpp"
#include "models/gpt_layout.hpp"
#include "models/lstm.hpp"

namespace strata {

std::vector<TensorSpec> model_tensors(const ModelConfig& model, const Placement& p) {
  if (model.kind == "cnn") return cnn_layout(model, p).specs;
  if (model.kind == "lstm") return lstm_layout(model, p).specs;
  return gpt_layout(model, p.tp_rank, p.tp_size, p.stage, p.stages).specs;
}

void check_model_layout(const ModelConfig& model, int tp, int pp, const std::string& source) {
  if (model.kind == "gpt") {
    check_tensor_parallel_split(model, tp, source);
  } else if (model.kind == "cnn") {
    check_cnn_tensor_parallel(model, tp, source);
  } else {
    STRATA_CHECK(tp == 1,
                 "{}: parallel.tp = {}: model.kind = {} has no tensor-parallel split (use data and pipeline "
                 "parallelism: parallel.dp, parallel.pp)",
                 source, tp, model.kind);
  }
  STRATA_CHECK(pp >= 1 && pp <= stage_units(model),
               "{}: parallel.pp = {}: expected 1 .. {} (each stage holds at least one {})", source, pp,
               stage_units(model), model.kind == "cnn" ? "conv block" : "layer");
}

std::vector<int> stage_layer_counts(const ModelConfig& model, int stages) {
  if (model.kind == "cnn") return cnn_stage_layer_counts(model, stages);
  if (model.kind == "lstm") return lstm_stage_layer_counts(model, stages);
  return gpt_stage_layer_counts(model, stages);
}

ModelSize model_size(const ModelConfig& m) {
  ModelSize s;
  if (m.kind == "cnn") {
    s.parameters = s.non_embedding = cnn_parameters(m);
    s.flops_per_sample = cnn_flops_per_sample(m);
    return s;
  }
  if (m.kind == "lstm") {
    s.parameters = s.non_embedding = lstm_parameters(m);
    s.flops_per_sample = lstm_flops_per_sample(m);
    return s;
  }
  s.non_embedding = non_embedding_params(m);
  s.parameters = s.non_embedding + int64_t(m.vocab_size + m.seq_len) * m.d_model;
  // Per token: 6N for the matrix products (the head is the embedding, counted here), 12 L C T for attention.
  const double per_token = 6.0 * double(s.non_embedding) + 6.0 * double(m.d_model) * m.vocab_size +
                           12.0 * m.n_layer * double(gpt_attention_width(m)) * m.seq_len;
  s.flops_per_sample = per_token * m.seq_len;
  return s;
}

DropoutRates dropout_rates(const ModelConfig& model, const TrainConfig& train) {
  auto site = [&](double value) { return value >= 0 ? value : train.dropout; };
  DropoutRates r;
  if (model.kind == "gpt") {
    r.embedding = site(train.embedding_dropout);
    r.attention = site(train.attention_dropout);
    r.residual = site(train.residual_dropout);
  } else {
    r.hidden = train.dropout;
  }
  return r;
}

template <class T>
std::unique_ptr<Model<T>> make_model(const ModelConfig& model, int batch, std::shared_ptr<ParamBuffer<T>> params,
                                     const Placement& placement, TensorParallel<T>& tp) {
  if (model.kind == "cnn") return std::make_unique<Cnn<T>>(std::move(params), model, batch, placement, tp);
  if (model.kind == "lstm") return std::make_unique<Lstm<T>>(std::move(params), model, batch, placement);
  return std::make_unique<Gpt<T>>(std::move(params), model, batch, placement, tp);
}

template std::unique_ptr<Model<float>> make_model<float>(const ModelConfig&, int, std::shared_ptr<ParamBuffer<float>>,
                                                         const Placement&, TensorParallel<float>&);
template std::unique_ptr<Model<double>> make_model<double>(const ModelConfig&, int,
                                                           std::shared_ptr<ParamBuffer<double>>, const Placement&,
                                                           TensorParallel<double>&);

}  // namespace strata
