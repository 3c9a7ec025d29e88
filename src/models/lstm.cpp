#include "models/lstm.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/activation.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/sequence.hpp"
#include "nn/linear.hpp"

namespace strata {

template <class T>
Lstm<T>::Lstm(const ModelConfig& model, int batch)
    : Lstm(std::make_shared<ParamBuffer<T>>(lstm_layout(model).specs), model, batch, Placement{}) {}

template <class T>
Lstm<T>::Lstm(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement)
    : Model<T>(placement, batch, std::move(params)),
      model_(model),
      activation_(activation_named(model.activation)),
      layout_(lstm_layout(model, placement)) {
  this->check_params(layout_.specs, "lstm");
  const size_t B = size_t(batch), BT = B * size_t(layout_.steps);
  size_t widest = std::max({size_t(layout_.hidden), size_t(layout_.features), size_t(std::max(model.hidden, 0))});
  size_t workspace = 0;
  for (const auto& l : layout_.layers)
    workspace = std::max(workspace, model.cell == "gru" ? gru_workspace_size(shape(l)) : lstm_workspace_size(shape(l)));
  grad_a_ = Vec<T>("strata::lstm::grad_a", BT * widest);
  grad_b_ = Vec<T>("strata::lstm::grad_b", BT * widest);
  dinput_ = Vec<T>("strata::lstm::dinput", stage_input_size());
  workspace_ = Vec<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::lstm::workspace"), workspace);
}

template <class T>
RecurrentShape Lstm<T>::shape(const LstmLayout::Layer& layer) const {
  return RecurrentShape{this->batch(), layout_.steps, layer.input, layout_.hidden};
}

template <class T>
size_t Lstm<T>::stage_input_size() const {
  return layout_.placement.first_stage() ? 0
                                         : size_t(this->batch()) * layout_.steps * size_t(layout_.layers.front().input);
}

template <class T>
size_t Lstm<T>::stage_output_size() const {
  return layout_.placement.last_stage() ? 0 : size_t(this->batch()) * layout_.steps * size_t(layout_.hidden);
}

template <class T>
size_t Lstm<T>::slot_bytes() const {
  if (slots_.empty()) return 0;
  const Slot& s = slots_.front();
  size_t bytes = s.targets.span() * sizeof(int32_t);
  for (const Vec<T>* v : {&s.input, &s.last, &s.hidden_pre, &s.hidden_act, &s.logits, &s.losses, &s.lse})
    bytes += v->span() * sizeof(T);
  for (const LayerActs& a : s.layers)
    for (const Vec<T>* v : {&a.h, &a.c, &a.gates, &a.hn, &a.dropped}) bytes += v->span() * sizeof(T);
  return bytes;
}

template <class T>
typename Lstm<T>::Slot& Lstm<T>::slot(int i) {
  STRATA_CHECK(i >= 0 && i <= int(slots_.size()), "lstm: activation slot {} requested with {} allocated", i,
               slots_.size());
  if (i < int(slots_.size())) return slots_[size_t(i)];
  const size_t B = size_t(this->batch()), BT = B * size_t(layout_.steps), H = size_t(layout_.hidden);
  const size_t R = size_t(rows());
  Slot s;
  s.input = Vec<T>("strata::lstm::input", BT * size_t(layout_.layers.front().input));
  for (size_t l = 0; l < layout_.layers.size(); ++l) {
    LayerActs a;
    a.h = Vec<T>("strata::lstm::h", BT * H);
    a.gates = Vec<T>("strata::lstm::gates", BT * H * size_t(layout_.gates));
    if (model_.cell == "gru")
      a.hn = Vec<T>("strata::lstm::hn", BT * H);
    else
      a.c = Vec<T>("strata::lstm::c", BT * H);
    s.layers.push_back(a);
  }
  if (layout_.placement.last_stage()) {
    if (!layout_.per_step) s.last = Vec<T>("strata::lstm::last", B * H);
    if (model_.hidden > 0) {
      s.hidden_pre = Vec<T>("strata::lstm::hidden_pre", R * size_t(model_.hidden));
      s.hidden_act = Vec<T>("strata::lstm::hidden_act", R * size_t(model_.hidden));
    }
    s.logits = Vec<T>("strata::lstm::logits", R * size_t(layout_.classes));
    s.losses = Vec<T>("strata::lstm::losses", R);
    s.lse = Vec<T>("strata::lstm::lse", R);
    s.targets = Vec<int32_t>("strata::lstm::targets", R);
  }
  slots_.push_back(std::move(s));
  return slots_.back();
}

template <class T>
DropoutMask Lstm<T>::layer_mask(const Slot& s, size_t l) const {
  const double p = this->dropout().hidden;
  if (!s.dropout.on || p <= 0) return {};
  return dropout_mask(s.dropout.seed, "dropout.layer." + std::to_string(layout_.first_layer + int(l)), s.dropout.step,
                      p, s.dropout.first_sample, int64_t(layout_.steps) * layout_.hidden);
}

template <class T>
DropoutMask Lstm<T>::hidden_mask(const Slot& s) const {
  const double p = this->dropout().hidden;
  if (!s.dropout.on || p <= 0 || model_.hidden == 0) return {};
  return dropout_mask(s.dropout.seed, "dropout.hidden", s.dropout.step, p, s.dropout.first_sample,
                      targets_per_sample() * model_.hidden);
}

template <class T>
void Lstm<T>::forward_stage(int slot_index, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) {
  this->check_batch(batch, with_loss);
  const int B = this->batch(), Tn = layout_.steps, H = layout_.hidden, R = rows(), C = layout_.classes;
  auto& P = this->params();
  Slot& s = slot(slot_index);
  s.dropout = batch.dropout;
  s.distilled = false;
  if (layout_.placement.first_stage()) {
    Kokkos::deep_copy(s.input, batch.features);
  } else {
    STRATA_CHECK(input != nullptr, "lstm forward: stage {} needs the previous stage's output", layout_.placement.stage);
    Kokkos::deep_copy(s.input, *input);
  }
  const Vec<T>* x = &s.input;
  for (size_t l = 0; l < layout_.layers.size(); ++l) {
    const auto& w = layout_.layers[l];
    LayerActs& a = s.layers[l];
    if (model_.cell == "gru")
      gru_forward<T>(a.h, a.gates, a.hn, *x, P.param(w.w_ih), P.param(w.w_hh), P.param(w.b_ih), P.param(w.b_hh),
                     shape(w));
    else
      lstm_forward<T>(a.h, a.c, a.gates, *x, P.param(w.w_ih), P.param(w.w_hh), P.param(w.b_ih), P.param(w.b_hh),
                      shape(w));
    x = &a.h;
    if (const DropoutMask m = layer_mask(s, l); m.active()) {
      if (a.dropped.extent(0) == 0) a.dropped = Vec<T>("strata::lstm::dropped", a.h.extent(0));
      dropout_apply<T>(a.dropped, a.h, m, B);
      x = &a.dropped;
    } else {
      a.dropped = Vec<T>();  // an evaluation after training: the states go on undropped
    }
  }
  if (!layout_.placement.last_stage()) return;
  // Features for the head: every step's state [B*T, H], or the last step's [B, H].
  const Vec<T>* features = x;
  if (!layout_.per_step) {
    gather_step<T>(s.last, *x, B, Tn, H, Tn - 1);
    features = &s.last;
  }
  if (model_.hidden > 0) {
    linear_forward<T>(s.hidden_pre, *features, P.param(layout_.hidden_w), P.param(layout_.hidden_b), R, H,
                      model_.hidden);
    activation_forward<T>(activation_, s.hidden_act, s.hidden_pre, size_t(R) * model_.hidden);
    if (const DropoutMask m = hidden_mask(s); m.active()) dropout_apply<T>(s.hidden_act, s.hidden_act, m, B);
    linear_forward<T>(s.logits, s.hidden_act, P.param(layout_.head_w), P.param(layout_.head_b), R, model_.hidden, C);
  } else {
    linear_forward<T>(s.logits, *features, P.param(layout_.head_w), P.param(layout_.head_b), R, H, C);
  }
  if (!with_loss) return;
  Kokkos::deep_copy(s.targets, batch.targets);
  cross_entropy_forward<T>(s.losses, s.lse, s.logits, s.targets, R, C, this->label_smoothing());
  s.distilled = this->distill_forward(s.teacher, batch, s.losses, s.logits, R, C);
  s.loss = mean_loss<T>(s.losses, R);
}

template <class T>
const Vec<T>& Lstm<T>::stage_output(int slot_index) const {
  return layer_output(slots_.at(size_t(slot_index)).layers.back());
}

template <class T>
T Lstm<T>::stage_loss(int slot_index) const {
  STRATA_CHECK(layout_.placement.last_stage(), "lstm: only the last pipeline stage has a loss");
  return slots_.at(size_t(slot_index)).loss;
}

template <class T>
const Vec<T>& Lstm<T>::logits(int slot_index) const {
  STRATA_CHECK(layout_.placement.last_stage(), "lstm: only the last pipeline stage has logits");
  return slots_.at(size_t(slot_index)).logits;
}

template <class T>
void Lstm<T>::backward_stage(int slot_index, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) {
  const int B = this->batch(), Tn = layout_.steps, H = layout_.hidden, R = rows(), C = layout_.classes;
  const size_t BTH = size_t(B) * Tn * H;
  auto& P = this->params();
  Slot& s = slots_.at(size_t(slot_index));
  auto ready = [&](int64_t offset) {
    if (on_ready) on_ready(offset);
  };
  auto sized = [](const Vec<T>& v, size_t n) { return view_of(v.data(), n); };
  // dh: d(loss)/d(every state of the stage's last layer) [B, T, H], in grad_a_.
  const Vec<T> dh = sized(grad_a_, BTH);
  if (layout_.placement.last_stage()) {
    const T dloss = loss_scale != T(0) ? loss_scale : T(1) / T(R);
    // logits become dlogits
    auto hard_backward = [&](T scale) {
      cross_entropy_backward<T>(s.logits, s.lse, s.targets, R, C, scale, this->label_smoothing());
    };
    if (s.distilled)
      this->distill_backward(s.logits, s.teacher, R, C, dloss, hard_backward);
    else
      hard_backward(dloss);
    const Vec<T>& features = layout_.per_step ? layer_output(s.layers.back()) : s.last;
    // d(features) [R, H] goes to grad_a_ directly (every step) or through grad_b_ into the last step.
    const Vec<T> dfeatures = layout_.per_step ? dh : sized(grad_b_, size_t(R) * H);
    if (model_.hidden > 0) {
      const size_t nh = size_t(R) * model_.hidden;
      const Vec<T> dhidden = layout_.per_step ? sized(grad_b_, nh) : sized(grad_a_, nh);
      linear_backward<T>(dhidden, P.grad(layout_.head_w), P.grad(layout_.head_b), s.logits, s.hidden_act,
                         P.param(layout_.head_w), R, model_.hidden, C);
      if (const DropoutMask m = hidden_mask(s); m.active()) dropout_apply<T>(dhidden, dhidden, m, B);
      activation_backward<T>(activation_, dhidden, s.hidden_pre, nh);
      linear_backward<T>(dfeatures, P.grad(layout_.hidden_w), P.grad(layout_.hidden_b), dhidden, features,
                         P.param(layout_.hidden_w), R, H, model_.hidden);
      ready(P.specs()[size_t(layout_.hidden_w)].offset);
    } else {
      linear_backward<T>(dfeatures, P.grad(layout_.head_w), P.grad(layout_.head_b), s.logits, features,
                         P.param(layout_.head_w), R, H, C);
      ready(P.specs()[size_t(layout_.head_w)].offset);
    }
    if (!layout_.per_step) scatter_step<T>(dh, dfeatures, B, Tn, H, Tn - 1);
  } else {
    STRATA_CHECK(output_grad != nullptr && output_grad->extent(0) == BTH,
                 "lstm backward: stage {} needs the next stage's gradient", layout_.placement.stage);
    Kokkos::deep_copy(dh, *output_grad);
  }
  // Layers back: each one's input gradient is the previous layer's dh (alternating buffers).
  const Vec<T>* cur = &grad_a_;
  for (int l = int(layout_.layers.size()) - 1; l >= 0; --l) {
    const auto& w = layout_.layers[size_t(l)];
    const LayerActs& a = s.layers[size_t(l)];
    const Vec<T>* next = cur == &grad_a_ ? &grad_b_ : &grad_a_;
    const Vec<T>& x = l > 0 ? layer_output(s.layers[size_t(l) - 1]) : s.input;
    const size_t nx = size_t(B) * Tn * size_t(w.input);
    // cur holds the gradient of what followed the layer read (its dropped states): masked, it is the states'.
    if (const DropoutMask m = layer_mask(s, size_t(l)); m.active())
      dropout_apply<T>(sized(*cur, BTH), sized(*cur, BTH), m, B);
    const Vec<T> dx = l > 0 ? sized(*next, nx) : layout_.placement.first_stage() ? Vec<T>() : dinput_;
    if (model_.cell == "gru")
      gru_backward<T>(dx, P.grad(w.w_ih), P.grad(w.w_hh), P.grad(w.b_ih), P.grad(w.b_hh), sized(*cur, BTH), x, a.h,
                      a.gates, a.hn, P.param(w.w_ih), P.param(w.w_hh), shape(w), workspace_);
    else
      lstm_backward<T>(dx, P.grad(w.w_ih), P.grad(w.w_hh), P.grad(w.b_ih), P.grad(w.b_hh), sized(*cur, BTH), x, a.h,
                       a.c, a.gates, P.param(w.w_ih), P.param(w.w_hh), shape(w), workspace_);
    cur = next;
    ready(P.specs()[size_t(w.w_ih)].offset);
  }
  ready(0);
}

template class Lstm<float>;
template class Lstm<double>;

}  // namespace strata
