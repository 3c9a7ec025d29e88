#include "nn/model.hpp"

#include "core/error.hpp"
#include "kernels/distillation.hpp"
#include "kernels/elementwise.hpp"

namespace strata {

template <class T>
Model<T>::Model(const Placement& placement, int batch, std::shared_ptr<ParamBuffer<T>> params)
    : placement_(placement), batch_(batch), params_(std::move(params)) {
  STRATA_CHECK(batch_ > 0, "model: batch {} (expected > 0)", batch_);
  STRATA_CHECK(placement_.stages >= 1 && placement_.stage >= 0 && placement_.stage < placement_.stages,
               "model: stage {} of {}", placement_.stage, placement_.stages);
  STRATA_CHECK(params_ != nullptr, "model: no parameter buffer");
}

template <class T>
T Model<T>::forward(const MicroBatch<T>& batch) {
  STRATA_CHECK(placement_.stages == 1, "model forward: a pipeline stage of {} runs through the pipeline runner",
               placement_.stages);
  forward_stage(0, batch, nullptr, true);
  return stage_loss(0);
}

template <class T>
void Model<T>::backward(T loss_scale) {
  STRATA_CHECK(placement_.stages == 1, "model backward: a pipeline stage of {} runs through the pipeline runner",
               placement_.stages);
  backward_stage(0, loss_scale, nullptr, {});
}

template <class T>
MicroBatch<T> Model<T>::allocate_batch() const {
  const size_t B = size_t(batch_);
  MicroBatch<T> b;
  if (token_inputs())
    b.tokens = Vec<int32_t>("strata::model::tokens", B * size_t(inputs_per_sample()));
  else
    b.features = Vec<T>("strata::model::features", B * size_t(inputs_per_sample()));
  b.targets = Vec<int32_t>("strata::model::targets", B * size_t(targets_per_sample()));
  return b;
}

template <class T>
void Model<T>::check_batch(const MicroBatch<T>& batch, bool with_targets) const {
  const bool tokens = token_inputs();
  const size_t inputs_per_sample = size_t(this->inputs_per_sample());
  const size_t B = size_t(batch_), inputs = tokens ? batch.tokens.extent(0) : batch.features.extent(0);
  const size_t targets = batch.targets.extent(0);
  if (placement_.first_stage())
    STRATA_CHECK(inputs == B * inputs_per_sample, "model forward: {} {} given, expected batch {} x {} = {}", inputs,
                 tokens ? "tokens" : "input values", B, inputs_per_sample, B * inputs_per_sample);
  if (with_targets)
    STRATA_CHECK(targets == B * size_t(targets_per_sample()), "model forward: {} targets given, expected batch {} x {}",
                 targets, B, targets_per_sample());
}

template <class T>
bool Model<T>::distill_forward(Vec<T>& kept, const MicroBatch<T>& batch, const Vec<T>& losses, const Vec<T>& logits,
                               int rows, int classes) {
  if (!distillation_.on() || batch.teacher_logits.extent(0) == 0) return false;
  const size_t n = size_t(rows) * size_t(classes);
  STRATA_CHECK(batch.teacher_logits.extent(0) == n, "distillation: teacher logits of {} values, expected {} x {}",
               batch.teacher_logits.extent(0), rows, classes);
  if (kept.extent(0) != n) kept = Vec<T>("strata::model::teacher_logits", n);
  Kokkos::deep_copy(kept, batch.teacher_logits);
  distillation_forward<T>(losses, logits, kept, rows, classes, T(distillation_.temperature), T(distillation_.alpha));
  return true;
}

template <class T>
void Model<T>::distill_backward(const Vec<T>& logits, const Vec<T>& kept, int rows, int classes, T dloss,
                                const std::function<void(T)>& hard_backward) {
  distill_backward(logits, size_t(rows) * size_t(classes), dloss, hard_backward, [&](const Vec<T>& soft, T alpha) {
    distillation_soft_gradient<T>(soft, logits, kept, rows, classes, T(distillation_.temperature), alpha, dloss);
  });
}

template <class T>
void Model<T>::distill_backward(const Vec<T>& logits, size_t n, T dloss, const std::function<void(T)>& hard_backward,
                                const std::function<void(const Vec<T>&, T)>& soft_gradient) {
  if (distill_scratch_.extent(0) < n) distill_scratch_ = Vec<T>("strata::model::distill_gradient", n);
  const Vec<T> soft = view_of(distill_scratch_.data(), n);
  const T alpha = T(distillation_.alpha);
  soft_gradient(soft, alpha);  // before the hard backward overwrites the logits
  hard_backward(dloss * (T(1) - alpha));
  accumulate<T>(logits, soft, n);
}

template <class T>
void Model<T>::check_params(const std::vector<TensorSpec>& expected, const char* what) const {
  const auto& specs = params_->specs();
  STRATA_CHECK(specs.size() == expected.size(), "{}: parameters have {} tensors, expected {}", what, specs.size(),
               expected.size());
  for (size_t i = 0; i < specs.size(); ++i)
    STRATA_CHECK(specs[i].name == expected[i].name && specs[i].shape == expected[i].shape,
                 "{}: parameter '{}' was laid out for another model or split", what, expected[i].name);
}

template class Model<float>;
template class Model<double>;

}  // namespace strata
