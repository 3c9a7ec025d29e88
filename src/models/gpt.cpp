#include "models/gpt.hpp"

#include "core/error.hpp"
#include "kernels/attention.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gelu.hpp"
#include "kernels/gemm.hpp"
#include "kernels/layernorm.hpp"
#include "nn/linear.hpp"

// Tensor parallelism follows Megatron-LM through parallel/'s pairs: c_attn and c_fc are column-parallel (each rank
// computes its heads / hidden units from the replicated input), the c_proj layers row-parallel (each rank's
// partial product summed over the group), wte vocabulary-parallel in the embedding, the tied head and the
// cross-entropy.

namespace strata {

template <class T>
Gpt<T>::Gpt(const ModelConfig& model, int batch)
    : Model<T>(Placement{}, batch, std::make_shared<ParamBuffer<T>>(gpt_layout(model).specs)),
      model_(model),
      own_tp_(std::make_unique<TensorParallel<T>>()),
      tp_(*own_tp_),
      layout_(gpt_layout(model)) {
  allocate_scratch();
}

template <class T>
Gpt<T>::Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement,
            TensorParallel<T>& tp)
    : Model<T>(placement, batch, std::move(params)),
      model_(model),
      tp_(tp),
      layout_(gpt_layout(model, placement.tp_rank, placement.tp_size, placement.stage, placement.stages)) {
  STRATA_CHECK(tp.size() == placement.tp_size, "gpt: a tensor-parallel group of {} for a split over {}", tp.size(),
               placement.tp_size);
  this->check_params(layout_.specs, "gpt");
  allocate_scratch();
}

template <class T>
size_t Gpt<T>::stage_input_size() const {
  return layout_.first_stage() ? 0 : size_t(this->batch()) * model_.seq_len * model_.d_model;
}

template <class T>
size_t Gpt<T>::stage_output_size() const {
  return layout_.last_stage() ? 0 : size_t(this->batch()) * model_.seq_len * model_.d_model;
}

template <class T>
void Gpt<T>::allocate_scratch() {
  const int tp = tp_.size();
  const size_t N = size_t(this->batch()) * model_.seq_len, C = model_.d_model, Tn = model_.seq_len;
  const size_t H = model_.n_head / tp, Cl = gpt_attention_width(model_) / tp, F = gpt_mlp_width(model_) / tp;
  dres_ = Vec<T>("strata::gpt::dres", N * C);
  dln_ = Vec<T>("strata::gpt::dln", N * C);
  dhidden_ = Vec<T>("strata::gpt::dhidden", N * F);
  dqkv_ = Vec<T>("strata::gpt::dqkv", N * 3 * Cl);
  datty_ = Vec<T>("strata::gpt::datty", N * Cl);
  att_scratch_ = Vec<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::gpt::att_scratch"),
                        attention_scratch_size({int(this->batch()), int(Tn), int(Cl), int(H)}));
}

template <class T>
typename Gpt<T>::Slot& Gpt<T>::slot(int i) {
  STRATA_CHECK(i >= 0 && i <= int(slots_.size()), "gpt: activation slot {} requested with {} allocated", i,
               slots_.size());
  if (i < int(slots_.size())) return slots_[size_t(i)];
  const int tp = tp_.size();
  const size_t N = size_t(this->batch()) * model_.seq_len, C = model_.d_model;
  const size_t V = model_.vocab_size / tp;  // this rank's share
  const size_t Cl = gpt_attention_width(model_) / tp, F = gpt_mlp_width(model_) / tp;
  Slot s;
  s.tokens = Vec<int32_t>("strata::gpt::tokens", N);
  s.targets = Vec<int32_t>("strata::gpt::targets", N);
  s.input = Vec<T>("strata::gpt::input", N * C);
  // bf16 storage: the GEMM-only activations live in one set of working buffers, shared by every block and slot.
  auto allocate_gemm_inputs = [&](BlockActs& a) {
    a.ln1 = Vec<T>("strata::gpt::ln1", N * C);
    a.qkv = Vec<T>("strata::gpt::qkv", N * 3 * Cl);
    a.atty = Vec<T>("strata::gpt::atty", N * Cl);
    a.ln2 = Vec<T>("strata::gpt::ln2", N * C);
    a.fc_gelu = Vec<T>("strata::gpt::fc_gelu", N * F);
  };
  if (bf16_storage_ && gemm_inputs_.ln1.extent(0) == 0) allocate_gemm_inputs(gemm_inputs_);
  for (size_t l = 0; l < layout_.blocks.size(); ++l) {
    BlockActs a;
    a.ln1_mean = Vec<T>("strata::gpt::ln1_mean", N);
    a.ln1_rstd = Vec<T>("strata::gpt::ln1_rstd", N);
    a.res1 = Vec<T>("strata::gpt::res1", N * C);
    a.ln2_mean = Vec<T>("strata::gpt::ln2_mean", N);
    a.ln2_rstd = Vec<T>("strata::gpt::ln2_rstd", N);
    a.fc = Vec<T>("strata::gpt::fc", N * F);
    a.res2 = Vec<T>("strata::gpt::res2", N * C);
    if (bf16_storage_) {
      const auto mine = gemm_inputs(a), shared = gemm_inputs(gemm_inputs_);
      for (size_t i = 0; i < mine.size(); ++i) {
        *mine[i] = *shared[i];
        a.packed.emplace_back("strata::gpt::bf16_activation", shared[i]->extent(0));
      }
    } else {
      allocate_gemm_inputs(a);
    }
    s.blocks.push_back(a);
  }
  if (layout_.last_stage()) {
    s.lnf = Vec<T>("strata::gpt::lnf", N * C);
    s.lnf_mean = Vec<T>("strata::gpt::lnf_mean", N);
    s.lnf_rstd = Vec<T>("strata::gpt::lnf_rstd", N);
    s.logits = Vec<T>("strata::gpt::logits", N * V);
    s.losses = Vec<T>("strata::gpt::losses", N);
    s.lse = Vec<T>("strata::gpt::lse", N);
  }
  slots_.push_back(std::move(s));
  return slots_.back();
}

template <class T>
void Gpt<T>::store_gemm_inputs_bf16(bool on) {
  STRATA_CHECK(slots_.empty(), "gpt: activation storage chosen after {} slot(s) were allocated", slots_.size());
  STRATA_CHECK(!on || (std::is_same_v<T, float>), "gpt: bf16 activation storage needs a float model");
  bf16_storage_ = on;
}

template <class T>
size_t Gpt<T>::slot_bytes() const {
  if (slots_.empty()) return 0;
  const Slot& s = slots_.front();
  size_t bytes = s.tokens.span() * sizeof(int32_t) * 2 + s.input.span() * sizeof(T);
  for (const BlockActs& a : s.blocks) {
    for (const Vec<T>* v : {&a.ln1_mean, &a.ln1_rstd, &a.res1, &a.ln2_mean, &a.ln2_rstd, &a.fc, &a.res2})
      bytes += v->span() * sizeof(T);
    if (bf16_storage_)
      for (const Bf16Vec& p : a.packed) bytes += p.span() * sizeof(bf16_bits);
    else
      for (const Vec<T>* v : {&a.ln1, &a.qkv, &a.atty, &a.ln2, &a.fc_gelu}) bytes += v->span() * sizeof(T);
  }
  for (const Vec<T>* v : {&s.lnf, &s.lnf_mean, &s.lnf_rstd, &s.logits, &s.losses, &s.lse})
    bytes += v->span() * sizeof(T);
  return bytes;
}

template <class T>
void Gpt<T>::pack(BlockActs& a) {
  if constexpr (std::is_same_v<T, float>) {
    if (!bf16_storage_) return;
    const auto inputs = gemm_inputs(a);
    for (size_t i = 0; i < inputs.size(); ++i) pack_bf16(a.packed[i], *inputs[i], inputs[i]->extent(0));
  }
}

template <class T>
void Gpt<T>::unpack(BlockActs& a) {
  if constexpr (std::is_same_v<T, float>) {
    if (!bf16_storage_) return;
    const auto inputs = gemm_inputs(a);
    for (size_t i = 0; i < inputs.size(); ++i) unpack_bf16(*inputs[i], a.packed[i], inputs[i]->extent(0));
  }
}

template <class T>
DropoutMask Gpt<T>::residual_mask(const Slot& s, const std::string& site, double p) const {
  if (!s.dropout.on || p <= 0) return {};
  return dropout_mask(s.dropout.seed, site, s.dropout.step, p, s.dropout.first_sample,
                      int64_t(model_.seq_len) * model_.d_model);
}

template <class T>
AttentionDropout Gpt<T>::attention_dropout(const Slot& s, int layer) const {
  const double p = this->dropout().attention;
  if (!s.dropout.on || p <= 0) return {};
  // The sample's probabilities are [n_head, T, T]; this rank's heads follow its tensor-parallel rank.
  const int heads = model_.n_head / tp_.size();
  return {dropout_mask(s.dropout.seed, "dropout.attention." + std::to_string(layer), s.dropout.step, p,
                       s.dropout.first_sample, int64_t(model_.n_head) * model_.seq_len * model_.seq_len),
          model_.n_head, this->placement().tp_rank * heads};
}

template <class T>
void Gpt<T>::forward_stage(int slot_index, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) {
  this->check_batch(batch, with_loss);
  STRATA_CHECK(!bf16_storage_ || gemm_precision() == GemmPrecision::BF16,
               "gpt: bf16 activation storage with {} GEMMs would round what the GEMMs do not (train.precision)",
               gemm_precision() == GemmPrecision::BF16 ? "bf16" : "fp32");
  const int B = this->batch(), Tn = model_.seq_len, C = model_.d_model, N = B * Tn, tp = tp_.size();
  const int V = model_.vocab_size / tp, H = model_.n_head / tp;
  const int Cl = int(gpt_attention_width(model_)) / tp, F = int(gpt_mlp_width(model_)) / tp;  // this rank's widths
  auto& P = this->params();
  Slot& s = slot(slot_index);
  s.dropout = batch.dropout;
  s.distilled = false;
  const DropoutRates& rates = this->dropout();
  if (s.dropout.on && rates.residual > 0 && branch_.extent(0) == 0)
    branch_ = Vec<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::gpt::branch"), size_t(N) * C);
  if (layout_.first_stage()) Kokkos::deep_copy(s.tokens, batch.tokens);
  if (with_loss) Kokkos::deep_copy(s.targets, batch.targets);
  if (layout_.first_stage()) {
    tp_.vocab_embedding_forward(s.input, s.tokens, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C, V);
    const DropoutMask embedding = residual_mask(s, "dropout.embedding", rates.embedding);
    if (embedding.active()) dropout_apply<T>(s.input, s.input, embedding, B);
  } else {
    STRATA_CHECK(input != nullptr, "gpt forward: stage {} needs the previous stage's output", layout_.stage);
    Kokkos::deep_copy(s.input, *input);
  }
  const Vec<T>* x = &s.input;
  for (size_t l = 0; l < layout_.blocks.size(); ++l) {
    const auto& w = layout_.blocks[l];
    auto& a = s.blocks[l];
    const int layer = layout_.first_layer + int(l);
    // A residual branch: out = r + dropout(branch(in)), or the fused out = r + branch(in) without dropout.
    auto residual_branch = [&](const Vec<T>& out, const Vec<T>& in, int weight, int bias, int in_local, const Vec<T>& r,
                               const char* site) {
      const DropoutMask m = residual_mask(s, site + std::to_string(layer), rates.residual);
      if (!m.active()) return tp_.row_linear_forward(out, in, P.param(weight), P.param(bias), N, in_local, C, r);
      tp_.row_linear_forward(branch_, in, P.param(weight), P.param(bias), N, in_local, C, Vec<T>());
      dropout_residual_add<T>(out, r, branch_, m, B);
    };
    layernorm_forward<T>(a.ln1, a.ln1_mean, a.ln1_rstd, *x, P.param(w.ln1_w), P.param(w.ln1_b), N, C);
    tp_.column_linear_forward(a.qkv, a.ln1, P.param(w.qkv_w), P.param(w.qkv_b), N, C, 3 * Cl);
    attention_forward<T>(a.atty, att_scratch_, a.qkv, {B, Tn, Cl, H}, attention_dropout(s, layer));
    residual_branch(a.res1, a.atty, w.attn_proj_w, w.attn_proj_b, Cl, *x, "dropout.attn_residual.");
    layernorm_forward<T>(a.ln2, a.ln2_mean, a.ln2_rstd, a.res1, P.param(w.ln2_w), P.param(w.ln2_b), N, C);
    tp_.column_linear_forward(a.fc, a.ln2, P.param(w.fc_w), P.param(w.fc_b), N, C, F);
    gelu_forward<T>(a.fc_gelu, a.fc, size_t(N) * F);
    residual_branch(a.res2, a.fc_gelu, w.mlp_proj_w, w.mlp_proj_b, F, a.res1, "dropout.mlp_residual.");
    pack(a);
    x = &a.res2;
  }
  if (!layout_.last_stage()) return;
  layernorm_forward<T>(s.lnf, s.lnf_mean, s.lnf_rstd, *x, P.param(layout_.lnf_w), P.param(layout_.lnf_b), N, C);
  // Tied head, column-parallel over the vocabulary: logits[N, V/tp] = lnf[N, C] wte[V/tp, C]^T
  tp_.column_linear_forward(s.logits, s.lnf, P.param(layout_.wte), Vec<T>(), N, C, V);
  if (!with_loss) return;
  tp_.vocab_cross_entropy_forward(s.losses, s.lse, s.logits, s.targets, N, V);
  // Distillation: the teacher is whole; the soft loss over the whole vocabulary combines the tp ranks' columns.
  const Distillation& d = this->distillation();
  s.distilled = d.on() && batch.teacher_logits.extent(0) > 0;
  if (s.distilled) {
    STRATA_CHECK(batch.teacher_logits.extent(0) == size_t(N) * V * tp,
                 "gpt: teacher logits of {} values, expected {} rows x {} tokens", batch.teacher_logits.extent(0), N,
                 V * tp);
    if (s.teacher.extent(0) != size_t(N) * V) s.teacher = Vec<T>("strata::gpt::teacher_logits", size_t(N) * V);
    if (s.distill_stats.extent(0) != 4 * size_t(N))
      s.distill_stats = Vec<T>("strata::gpt::distill_stats", 4 * size_t(N));
    copy_columns<T>(s.teacher, batch.teacher_logits, N, int64_t(V) * tp, int64_t(this->placement().tp_rank) * V, V);
    tp_.vocab_distillation_forward(s.losses, s.distill_stats, s.logits, s.teacher, N, V, T(d.temperature), T(d.alpha));
  }
  s.loss = mean_loss<T>(s.losses, N);
}

template <class T>
const Vec<T>& Gpt<T>::stage_output(int slot_index) const {
  const Slot& s = slots_.at(size_t(slot_index));
  return s.blocks.empty() ? s.input : s.blocks.back().res2;
}

template <class T>
T Gpt<T>::stage_loss(int slot_index) const {
  STRATA_CHECK(layout_.last_stage(), "gpt: only the last pipeline stage has a loss");
  return slots_.at(size_t(slot_index)).loss;
}

template <class T>
const Vec<T>& Gpt<T>::logits(int slot_index) const {
  STRATA_CHECK(layout_.last_stage(), "gpt: only the last pipeline stage has logits");
  return slots_.at(size_t(slot_index)).logits;
}

template <class T>
void Gpt<T>::backward_stage(int slot_index, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) {
  const int B = this->batch(), Tn = model_.seq_len, C = model_.d_model, N = B * Tn, tp = tp_.size();
  const int V = model_.vocab_size / tp, H = model_.n_head / tp;
  const int Cl = int(gpt_attention_width(model_)) / tp, F = int(gpt_mlp_width(model_)) / tp;  // this rank's widths
  auto& P = this->params();
  Slot& s = slots_.at(size_t(slot_index));
  auto ready = [&](int64_t offset) {
    if (on_ready) on_ready(offset);
  };
  if (layout_.last_stage()) {
    const T dloss = loss_scale != T(0) ? loss_scale : T(1) / T(N);
    auto hard_backward = [&](T scale) { tp_.vocab_cross_entropy_backward(s.logits, s.lse, s.targets, N, V, scale); };
    if (s.distilled)
      this->distill_backward(s.logits, size_t(N) * V, dloss, hard_backward, [&](const Vec<T>& soft, T alpha) {
        tp_.vocab_distillation_soft_gradient(soft, s.distill_stats, s.logits, s.teacher, N, V,
                                             T(this->distillation().temperature), alpha, dloss);
      });
    else
      hard_backward(dloss);
    // Tied head: dlnf[N, C] = dlogits wte (summed over vocabulary slices); dwte[V/tp, C] += dlogits^T lnf
    tp_.column_linear_backward(dln_, P.grad(layout_.wte), Vec<T>(), s.logits, s.lnf, P.param(layout_.wte), N, C, V);
    Kokkos::deep_copy(dres_, T(0));
    const Vec<T>& last = stage_output(slot_index);
    layernorm_backward<T>(dres_, P.grad(layout_.lnf_w), P.grad(layout_.lnf_b), dln_, last, P.param(layout_.lnf_w),
                          s.lnf_mean, s.lnf_rstd, N, C);
    ready(P.specs()[size_t(layout_.lnf_w)].offset);
  } else {
    STRATA_CHECK(output_grad != nullptr, "gpt backward: stage {} needs the next stage's gradient", layout_.stage);
    Kokkos::deep_copy(dres_, *output_grad);
  }
  // dres_ holds the gradient of the residual stream (the same on every tp rank), walked back in place. A residual
  // branch with dropout gets the masked gradient (in branch_); the stream's own gradient passes unchanged.
  const DropoutRates& rates = this->dropout();
  for (int l = int(layout_.blocks.size()) - 1; l >= 0; --l) {
    const auto& w = layout_.blocks[size_t(l)];
    auto& a = s.blocks[size_t(l)];
    const Vec<T>& x = l > 0 ? s.blocks[size_t(l) - 1].res2 : s.input;
    const int layer = layout_.first_layer + l;
    auto branch_grad = [&](const char* site) -> const Vec<T>& {
      const DropoutMask m = residual_mask(s, site + std::to_string(layer), rates.residual);
      if (!m.active()) return dres_;
      dropout_apply<T>(branch_, dres_, m, B);
      return branch_;
    };
    unpack(a);
    tp_.row_linear_backward(dhidden_, P.grad(w.mlp_proj_w), P.grad(w.mlp_proj_b), branch_grad("dropout.mlp_residual."),
                            a.fc_gelu, P.param(w.mlp_proj_w), N, F, C);
    gelu_backward<T>(dhidden_, dhidden_, a.fc, size_t(N) * F);
    tp_.column_linear_backward(dln_, P.grad(w.fc_w), P.grad(w.fc_b), dhidden_, a.ln2, P.param(w.fc_w), N, C, F);
    layernorm_backward<T>(dres_, P.grad(w.ln2_w), P.grad(w.ln2_b), dln_, a.res1, P.param(w.ln2_w), a.ln2_mean,
                          a.ln2_rstd, N, C);
    tp_.row_linear_backward(datty_, P.grad(w.attn_proj_w), P.grad(w.attn_proj_b), branch_grad("dropout.attn_residual."),
                            a.atty, P.param(w.attn_proj_w), N, Cl, C);
    attention_backward<T>(dqkv_, att_scratch_, datty_, a.qkv, {B, Tn, Cl, H}, attention_dropout(s, layer));
    tp_.column_linear_backward(dln_, P.grad(w.qkv_w), P.grad(w.qkv_b), dqkv_, a.ln1, P.param(w.qkv_w), N, C, 3 * Cl);
    layernorm_backward<T>(dres_, P.grad(w.ln1_w), P.grad(w.ln1_b), dln_, x, P.param(w.ln1_w), a.ln1_mean, a.ln1_rstd, N,
                          C);
    ready(P.specs()[size_t(w.ln1_w)].offset);
  }
  if (layout_.first_stage()) {
    const DropoutMask embedding = residual_mask(s, "dropout.embedding", rates.embedding);
    if (embedding.active()) dropout_apply<T>(dres_, dres_, embedding, B);
    tp_.vocab_embedding_backward(P.grad(layout_.wte), P.grad(layout_.wpe), s.tokens, dres_, B, Tn, C, V);
  }
  ready(0);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace strata
