#include "models/cnn.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/activation.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/group_norm.hpp"
#include "kernels/pooling.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"

namespace strata {

template <class T>
Cnn<T>::Cnn(const ModelConfig& model, int batch)
    : Model<T>(Placement{}, batch, std::make_shared<ParamBuffer<T>>(cnn_layout(model).specs)),
      model_(model),
      activation_(activation_named(model.activation)),
      own_tp_(std::make_unique<TensorParallel<T>>()),
      tp_(*own_tp_),
      layout_(cnn_layout(model)) {
  allocate_scratch();
}

template <class T>
Cnn<T>::Cnn(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement,
            TensorParallel<T>& tp)
    : Model<T>(placement, batch, std::move(params)),
      model_(model),
      activation_(activation_named(model.activation)),
      tp_(tp),
      layout_(cnn_layout(model, placement)) {
  STRATA_CHECK(tp.size() == placement.tp_size, "cnn: a tensor-parallel group of {} for a split over {}", tp.size(),
               placement.tp_size);
  this->check_params(layout_.specs, "cnn");
  allocate_scratch();
}

template <class T>
Conv2dShape Cnn<T>::conv_shape(const CnnLayout::Block& b) const {
  return Conv2dShape{this->batch(),      b.in_local,         b.g.in_h,           b.g.in_w,   b.out_local,
                     model_.kernel_size, model_.kernel_size, model_.conv_stride, b.g.padding};
}

template <class T>
int Cnn<T>::norm_groups(const CnnLayout::Block& b) const {
  return b.column ? model_.norm_groups / tp_.size() : model_.norm_groups;
}

template <class T>
int64_t Cnn<T>::flat_local() const {
  return layout_.head_row_parallel ? layout_.flat / tp_.size() : layout_.flat;
}

template <class T>
size_t Cnn<T>::stage_input_size() const {
  return layout_.placement.first_stage() ? 0 : size_t(this->batch()) * size_t(input_size(layout_.blocks.front()));
}

template <class T>
size_t Cnn<T>::stage_output_size() const {
  return layout_.placement.last_stage() ? 0 : size_t(this->batch()) * size_t(output_size(layout_.blocks.back()));
}

template <class T>
void Cnn<T>::allocate_scratch() {
  const size_t B = size_t(this->batch());
  size_t largest = 0, workspace = 0;
  for (const auto& b : layout_.blocks) {
    // A column-parallel block's input gradient is the whole input (summed over the group).
    largest = std::max({largest, size_t(input_size(b)), size_t(conv_size(b))});
    workspace = std::max(workspace, conv2d_workspace_size(conv_shape(b)));
  }
  largest = std::max({largest, size_t(model_.hidden), size_t(layout_.classes)});
  grad_a_ = Vec<T>("strata::cnn::grad_a", B * largest);
  grad_b_ = Vec<T>("strata::cnn::grad_b", B * largest);
  dinput_ = Vec<T>("strata::cnn::dinput", stage_input_size());
  workspace_ = Vec<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::cnn::workspace"), workspace);
}

template <class T>
size_t Cnn<T>::slot_bytes() const {
  if (slots_.empty()) return 0;
  const Slot& s = slots_.front();
  size_t bytes = s.targets.span() * sizeof(int32_t);
  for (const Vec<T>* v : {&s.input, &s.hidden_pre, &s.hidden_act, &s.logits, &s.losses, &s.lse, &s.dropped_features})
    bytes += v->span() * sizeof(T);
  for (const BlockActs& a : s.blocks) {
    for (const Vec<T>* v : {&a.conv, &a.norm, &a.mean, &a.rstd, &a.act, &a.pooled}) bytes += v->span() * sizeof(T);
    bytes += a.argmax.span() * sizeof(int32_t);
  }
  return bytes;
}

template <class T>
typename Cnn<T>::Slot& Cnn<T>::slot(int i) {
  STRATA_CHECK(i >= 0 && i <= int(slots_.size()), "cnn: activation slot {} requested with {} allocated", i,
               slots_.size());
  if (i < int(slots_.size())) return slots_[size_t(i)];
  const size_t B = size_t(this->batch());
  Slot s;
  s.input = Vec<T>("strata::cnn::input", B * size_t(input_size(layout_.blocks.front())));
  for (const auto& b : layout_.blocks) {
    BlockActs a;
    const size_t n = B * size_t(conv_size(b));
    a.conv = Vec<T>("strata::cnn::conv", n);
    if (b.norm_w >= 0) {
      a.norm = Vec<T>("strata::cnn::norm", n);
      a.mean = Vec<T>("strata::cnn::norm_mean", B * size_t(norm_groups(b)));
      a.rstd = Vec<T>("strata::cnn::norm_rstd", B * size_t(norm_groups(b)));
    }
    a.act = Vec<T>("strata::cnn::act", n);
    if (model_.pool != "none") {
      a.pooled = Vec<T>("strata::cnn::pooled", B * size_t(output_size(b)));
      if (model_.pool == "max") a.argmax = Vec<int32_t>("strata::cnn::argmax", B * size_t(output_size(b)));
    }
    s.blocks.push_back(a);
  }
  if (layout_.placement.last_stage()) {
    if (model_.hidden > 0) {
      s.hidden_pre = Vec<T>("strata::cnn::hidden_pre", B * size_t(model_.hidden));
      s.hidden_act = Vec<T>("strata::cnn::hidden_act", B * size_t(model_.hidden));
    }
    s.logits = Vec<T>("strata::cnn::logits", B * size_t(layout_.classes));
    s.losses = Vec<T>("strata::cnn::losses", B);
    s.lse = Vec<T>("strata::cnn::lse", B);
    s.targets = Vec<int32_t>("strata::cnn::targets", B);
  }
  slots_.push_back(std::move(s));
  return slots_.back();
}

template <class T>
DropoutMask Cnn<T>::features_mask(const Slot& s) const {
  const double p = this->dropout().hidden;
  if (!s.dropout.on || p <= 0) return {};
  // Split over channels after a column-parallel block: this rank's channels are a contiguous run of each image's
  // flattened [C, H, W].
  const int64_t local = flat_local();
  const int64_t offset = layout_.head_row_parallel ? this->placement().tp_rank * local : 0;
  return dropout_mask(s.dropout.seed, "dropout.features", s.dropout.step, p, s.dropout.first_sample, layout_.flat,
                      offset, local);
}

template <class T>
DropoutMask Cnn<T>::hidden_mask(const Slot& s) const {
  const double p = this->dropout().hidden;
  if (!s.dropout.on || p <= 0 || model_.hidden == 0) return {};
  return dropout_mask(s.dropout.seed, "dropout.hidden", s.dropout.step, p, s.dropout.first_sample, model_.hidden);
}

template <class T>
const Vec<T>& Cnn<T>::head_input(const Slot& s) const {
  return features_mask(s).active() ? s.dropped_features : s.blocks.back().output();
}

template <class T>
void Cnn<T>::forward_stage(int slot_index, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) {
  this->check_batch(batch, with_loss);
  const int B = this->batch();
  auto& P = this->params();
  Slot& s = slot(slot_index);
  s.dropout = batch.dropout;
  s.distilled = false;
  if (layout_.placement.first_stage()) {
    Kokkos::deep_copy(s.input, batch.features);
  } else {
    STRATA_CHECK(input != nullptr, "cnn forward: stage {} needs the previous stage's output", layout_.placement.stage);
    Kokkos::deep_copy(s.input, *input);
  }
  const Vec<T>* x = &s.input;
  for (size_t i = 0; i < layout_.blocks.size(); ++i) {
    const auto& b = layout_.blocks[i];
    BlockActs& a = s.blocks[i];
    const size_t n = size_t(B) * size_t(conv_size(b));
    if (b.column)
      tp_.column_conv2d_forward(a.conv, *x, P.param(b.conv_w), P.param(b.conv_b), conv_shape(b), workspace_);
    else
      tp_.row_conv2d_forward(a.conv, *x, P.param(b.conv_w), P.param(b.conv_b), conv_shape(b), workspace_);
    if (b.norm_w >= 0)
      group_norm_forward<T>(a.norm, a.mean, a.rstd, a.conv, P.param(b.norm_w), P.param(b.norm_b), B, b.out_local,
                            int64_t(b.g.conv_h) * b.g.conv_w, norm_groups(b));
    activation_forward<T>(activation_, a.act, a.pre_activation(), n);
    const Pool2dShape pool{
        B, b.out_local, b.g.conv_h, b.g.conv_w, model_.pool_size, model_.pool_size, model_.pool_size};
    if (model_.pool == "max")
      max_pool2d_forward<T>(a.pooled, a.argmax, a.act, pool);
    else if (model_.pool == "avg")
      avg_pool2d_forward<T>(a.pooled, a.act, pool);
    x = &a.output();
  }
  if (!layout_.placement.last_stage()) return;
  // The last block's output [B, C, H, W] is the flattened [B, flat] the head reads (row-major, NCHW); split over
  // channels after a column-parallel block, so the first head layer is then row-parallel.
  const int flat = int(flat_local()), C = layout_.classes;
  if (const DropoutMask m = features_mask(s); m.active()) {
    if (s.dropped_features.extent(0) == 0)
      s.dropped_features = Vec<T>("strata::cnn::dropped_features", size_t(B) * size_t(flat));
    dropout_apply<T>(s.dropped_features, *x, m, B);
    x = &s.dropped_features;
  }
  auto first_layer = [&](const Vec<T>& y, int w, int bias, int out) {
    if (layout_.head_row_parallel)
      tp_.row_linear_forward(y, *x, P.param(w), P.param(bias), B, flat, out, Vec<T>());
    else
      linear_forward<T>(y, *x, P.param(w), P.param(bias), B, flat, out);
  };
  if (model_.hidden > 0) {
    first_layer(s.hidden_pre, layout_.hidden_w, layout_.hidden_b, model_.hidden);
    activation_forward<T>(activation_, s.hidden_act, s.hidden_pre, size_t(B) * model_.hidden);
    if (const DropoutMask m = hidden_mask(s); m.active()) dropout_apply<T>(s.hidden_act, s.hidden_act, m, B);
    linear_forward<T>(s.logits, s.hidden_act, P.param(layout_.head_w), P.param(layout_.head_b), B, model_.hidden, C);
  } else {
    first_layer(s.logits, layout_.head_w, layout_.head_b, C);
  }
  if (!with_loss) return;
  Kokkos::deep_copy(s.targets, batch.targets);
  cross_entropy_forward<T>(s.losses, s.lse, s.logits, s.targets, B, C, this->label_smoothing());
  s.distilled = this->distill_forward(s.teacher, batch, s.losses, s.logits, B, C);
  s.loss = mean_loss<T>(s.losses, B);
}

template <class T>
const Vec<T>& Cnn<T>::stage_output(int slot_index) const {
  return slots_.at(size_t(slot_index)).blocks.back().output();
}

template <class T>
T Cnn<T>::stage_loss(int slot_index) const {
  STRATA_CHECK(layout_.placement.last_stage(), "cnn: only the last pipeline stage has a loss");
  return slots_.at(size_t(slot_index)).loss;
}

template <class T>
const Vec<T>& Cnn<T>::logits(int slot_index) const {
  STRATA_CHECK(layout_.placement.last_stage(), "cnn: only the last pipeline stage has logits");
  return slots_.at(size_t(slot_index)).logits;
}

template <class T>
void Cnn<T>::backward_stage(int slot_index, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) {
  const int B = this->batch();
  auto& P = this->params();
  Slot& s = slots_.at(size_t(slot_index));
  auto ready = [&](int64_t offset) {
    if (on_ready) on_ready(offset);
  };
  // Gradients alternate between two scratch buffers: each step reads one and writes the other.
  const Vec<T>* cur = &grad_a_;
  auto other = [&](const Vec<T>* v) { return v == &grad_a_ ? &grad_b_ : &grad_a_; };
  auto sized = [](const Vec<T>* v, size_t n) { return view_of(v->data(), n); };
  const auto& last = layout_.blocks.back();
  const size_t last_out = size_t(B) * size_t(output_size(last));
  if (layout_.placement.last_stage()) {
    const int flat = int(flat_local()), C = layout_.classes;
    const T dloss = loss_scale != T(0) ? loss_scale : T(1) / T(B);
    // logits become dlogits
    auto hard_backward = [&](T scale) {
      cross_entropy_backward<T>(s.logits, s.lse, s.targets, B, C, scale, this->label_smoothing());
    };
    if (s.distilled)
      this->distill_backward(s.logits, s.teacher, B, C, dloss, hard_backward);
    else
      hard_backward(dloss);
    const Vec<T>& features = head_input(s);
    if (model_.hidden > 0) {
      const size_t nh = size_t(B) * model_.hidden;
      const Vec<T> dhidden = sized(other(cur), nh);
      linear_backward<T>(dhidden, P.grad(layout_.head_w), P.grad(layout_.head_b), s.logits, s.hidden_act,
                         P.param(layout_.head_w), B, model_.hidden, C);
      if (const DropoutMask m = hidden_mask(s); m.active()) dropout_apply<T>(dhidden, dhidden, m, B);
      activation_backward<T>(activation_, dhidden, s.hidden_pre, nh);
      linear_backward<T>(sized(cur, last_out), P.grad(layout_.hidden_w), P.grad(layout_.hidden_b), dhidden, features,
                         P.param(layout_.hidden_w), B, flat, model_.hidden);
      ready(P.specs()[size_t(layout_.hidden_w)].offset);
    } else {
      linear_backward<T>(sized(cur, last_out), P.grad(layout_.head_w), P.grad(layout_.head_b), s.logits, features,
                         P.param(layout_.head_w), B, flat, C);
      ready(P.specs()[size_t(layout_.head_w)].offset);
    }
    if (const DropoutMask m = features_mask(s); m.active()) {
      const Vec<T> dfeatures = sized(cur, last_out);
      dropout_apply<T>(dfeatures, dfeatures, m, B);
    }
  } else {
    STRATA_CHECK(output_grad != nullptr && output_grad->extent(0) == last_out,
                 "cnn backward: stage {} needs the next stage's gradient", layout_.placement.stage);
    Kokkos::deep_copy(sized(cur, last_out), *output_grad);
  }
  // cur holds d(loss)/d(block output); walk the blocks back.
  for (int i = int(layout_.blocks.size()) - 1; i >= 0; --i) {
    const auto& b = layout_.blocks[size_t(i)];
    BlockActs& a = s.blocks[size_t(i)];
    const size_t n = size_t(B) * size_t(conv_size(b));
    const Pool2dShape pool{
        B, b.out_local, b.g.conv_h, b.g.conv_w, model_.pool_size, model_.pool_size, model_.pool_size};
    const size_t out = size_t(B) * size_t(output_size(b));
    if (model_.pool == "max") {
      max_pool2d_backward<T>(sized(other(cur), n), sized(cur, out), a.argmax, pool);
      cur = other(cur);
    } else if (model_.pool == "avg") {
      avg_pool2d_backward<T>(sized(other(cur), n), sized(cur, out), pool);
      cur = other(cur);
    }
    activation_backward<T>(activation_, sized(cur, n), a.pre_activation(), n);
    if (b.norm_w >= 0) {
      group_norm_backward<T>(sized(other(cur), n), P.grad(b.norm_w), P.grad(b.norm_b), sized(cur, n), a.conv,
                             P.param(b.norm_w), a.mean, a.rstd, B, b.out_local, int64_t(b.g.conv_h) * b.g.conv_w,
                             norm_groups(b));
      cur = other(cur);
    }
    const Vec<T>& x = i > 0 ? s.blocks[size_t(i) - 1].output() : s.input;
    const bool first_of_model = i == 0 && layout_.placement.first_stage();
    const Vec<T> dx = i > 0            ? sized(other(cur), size_t(B) * size_t(input_size(b)))
                      : first_of_model ? Vec<T>()
                                       : dinput_;
    if (b.column)
      tp_.column_conv2d_backward(dx, P.grad(b.conv_w), P.grad(b.conv_b), sized(cur, n), x, P.param(b.conv_w),
                                 conv_shape(b), workspace_);
    else
      tp_.row_conv2d_backward(dx, P.grad(b.conv_w), P.grad(b.conv_b), sized(cur, n), x, P.param(b.conv_w),
                              conv_shape(b), workspace_);
    cur = other(cur);
    ready(P.specs()[size_t(b.conv_w)].offset);
  }
  ready(0);
}

template class Cnn<float>;
template class Cnn<double>;

}  // namespace strata
