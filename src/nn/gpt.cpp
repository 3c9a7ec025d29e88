#include "nn/gpt.hpp"

#include <chrono>

#include "core/error.hpp"
#include "kernels/attention.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/embedding.hpp"
#include "kernels/gelu.hpp"
#include "kernels/layernorm.hpp"
#include "kernels/vocab_parallel_cross_entropy.hpp"
#include "nn/linear.hpp"

// Tensor parallelism follows Megatron-LM: c_attn and c_fc are column-parallel (each rank computes its heads /
// hidden units from the replicated input), c_proj layers are row-parallel (each rank's partial product is
// summed over the tp group), wte is split by vocabulary. The communication comes in swapped pairs: where the
// forward sums over the group (row-parallel outputs, the embedding), the backward passes the gradient on
// unchanged; where the forward uses a replicated input unchanged (column-parallel layers, the head), the
// backward sums the input's gradient. With one tp rank every sum is skipped.
//
// Pipeline stages hold contiguous layer ranges; activations go forward and their gradients backward between
// neighbouring stages (tag kActivation / kGradient).

namespace strata {
namespace {
constexpr int kActivation = 11, kGradient = 12;
}

template <class T>
Gpt<T>::Gpt(const ModelConfig& model, int batch)
    : model_(model), batch_(batch), tp_(nullptr), pp_(nullptr), tp_size_(1), tp_rank_(0), layout_(gpt_layout(model)),
      params_(std::make_shared<ParamBuffer<T>>(layout_.specs)) {
  allocate_scratch();
}

template <class T>
Gpt<T>::Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, Communicator* tp,
            Communicator* pp)
    : model_(model), batch_(batch), tp_(tp && tp->size() > 1 ? tp : nullptr),
      pp_(pp && pp->size() > 1 ? pp : nullptr), tp_size_(tp_ ? tp_->size() : 1), tp_rank_(tp_ ? tp_->rank() : 0),
      layout_(gpt_layout(model, tp_rank_, tp_size_, pp_ ? pp_->rank() : 0, pp_ ? pp_->size() : 1)),
      params_(std::move(params)) {
  STRATA_CHECK(params_->specs().size() == layout_.specs.size(), "gpt: shared parameters have {} tensors, expected {}",
               params_->specs().size(), layout_.specs.size());
  for (size_t i = 0; i < layout_.specs.size(); ++i)
    STRATA_CHECK(params_->specs()[i].shape == layout_.specs[i].shape && params_->specs()[i].name == layout_.specs[i].name,
                 "gpt: parameter '{}' was laid out for another split", layout_.specs[i].name);
  allocate_scratch();
}

template <class T>
void Gpt<T>::allocate_scratch() {
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model, Tn = model_.seq_len;
  const size_t H = model_.n_head / tp_size_, Cl = C / tp_size_, F = 4 * C / tp_size_;
  dres_ = Vec<T>("strata::gpt::dres", N * C);
  dln_ = Vec<T>("strata::gpt::dln", N * C);
  dhidden_ = Vec<T>("strata::gpt::dhidden", N * F);
  dqkv_ = Vec<T>("strata::gpt::dqkv", N * 3 * Cl);
  datty_ = Vec<T>("strata::gpt::datty", N * Cl);
  att_scratch_ = Vec<T>("strata::gpt::att_scratch", H * Tn * Tn);
  if (pp_) pipe_buffer_ = Vec<T>("strata::gpt::pipe_buffer", N * C);
  if (tp_) {
    proj_sum_ = Vec<T>("strata::gpt::proj_sum", N * C);
    row_max_ = Vec<T>("strata::gpt::row_max", N);
    row_sum_ = Vec<T>("strata::gpt::row_sum", N);
    row_picked_ = Vec<T>("strata::gpt::row_picked", N);
  }
}

template <class T>
typename Gpt<T>::Slot& Gpt<T>::slot(int i) {
  STRATA_CHECK(i >= 0 && i <= int(slots_.size()), "gpt: activation slot {} requested with {} allocated", i,
               slots_.size());
  if (i < int(slots_.size())) return slots_[size_t(i)];
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model, Tn = model_.seq_len;
  const size_t V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_;  // this rank's share
  const size_t Cl = C / tp_size_, F = 4 * C / tp_size_;
  Slot s;
  s.tokens = Vec<int32_t>("strata::gpt::tokens", N);
  s.targets = Vec<int32_t>("strata::gpt::targets", N);
  s.input = Vec<T>("strata::gpt::input", N * C);
  for (size_t l = 0; l < layout_.blocks.size(); ++l) {
    BlockActs a;
    a.ln1 = Vec<T>("strata::gpt::ln1", N * C);
    a.ln1_mean = Vec<T>("strata::gpt::ln1_mean", N);
    a.ln1_rstd = Vec<T>("strata::gpt::ln1_rstd", N);
    a.qkv = Vec<T>("strata::gpt::qkv", N * 3 * Cl);
    a.att = Vec<T>("strata::gpt::att", size_t(batch_) * H * Tn * Tn);
    a.atty = Vec<T>("strata::gpt::atty", N * Cl);
    a.res1 = Vec<T>("strata::gpt::res1", N * C);
    a.ln2 = Vec<T>("strata::gpt::ln2", N * C);
    a.ln2_mean = Vec<T>("strata::gpt::ln2_mean", N);
    a.ln2_rstd = Vec<T>("strata::gpt::ln2_rstd", N);
    a.fc = Vec<T>("strata::gpt::fc", N * F);
    a.fc_gelu = Vec<T>("strata::gpt::fc_gelu", N * F);
    a.res2 = Vec<T>("strata::gpt::res2", N * C);
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
void Gpt<T>::tp_sum(const Vec<T>& v) {
  if (!tp_) return;
  Kokkos::fence();
  const auto start = std::chrono::steady_clock::now();
  tp_->all_reduce_sum(v.data(), v.extent(0));
  comm_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

template <class T>
double Gpt<T>::take_comm_ms() {
  const double ms = comm_ms_;
  comm_ms_ = 0;
  return ms;
}

template <class T>
void Gpt<T>::row_parallel_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int in_local,
                                  const Vec<T>& residual) {
  const int N = batch_ * model_.seq_len, C = model_.d_model;
  if (!tp_) {
    linear_forward<T>(y, x, w, b, N, in_local, C, &residual);  // fused: one GEMM accumulating into residual + b
    return;
  }
  gemm<T>({Trans::No, Trans::Yes, N, C, in_local, in_local, in_local, C}, T(1), x.data(), w.data(), T(0),
          proj_sum_.data());
  tp_sum(proj_sum_);
  residual_bias_add<T>(y, residual, b, proj_sum_, N, C);
}

template <class T>
void Gpt<T>::forward_stage(int slot_index, const Vec<int32_t>& tokens, const Vec<int32_t>& targets,
                           const Vec<T>* input) {
  const size_t N = size_t(batch_) * model_.seq_len;
  STRATA_CHECK(tokens.extent(0) == N && targets.extent(0) == N,
               "gpt forward: {} tokens and {} targets given, expected batch*seq_len = {}", tokens.extent(0),
               targets.extent(0), N);
  Slot& s = slot(slot_index);
  Kokkos::deep_copy(s.tokens, tokens);
  Kokkos::deep_copy(s.targets, targets);
  if (!layout_.first_stage()) {
    STRATA_CHECK(input != nullptr, "gpt forward: stage {} needs the previous stage's output", layout_.stage);
    Kokkos::deep_copy(s.input, *input);
  }
  stage_forward_body(s, true);
}

template <class T>
void Gpt<T>::stage_forward_body(Slot& s, bool with_loss) {
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, N = B * Tn;
  const int V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_, Cl = C / tp_size_, F = 4 * C / tp_size_;
  auto& P = *params_;
  if (layout_.first_stage()) {
    if (!tp_) {
      embedding_forward<T>(s.input, s.tokens, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C);
    } else {
      embedding_forward_sharded<T>(s.input, s.tokens, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C,
                                   int64_t(tp_rank_) * V, V, tp_rank_ == 0);
      tp_sum(s.input);
    }
  }
  const Vec<T>* x = &s.input;
  for (size_t l = 0; l < layout_.blocks.size(); ++l) {
    const auto& w = layout_.blocks[l];
    auto& a = s.blocks[l];
    layernorm_forward<T>(a.ln1, a.ln1_mean, a.ln1_rstd, *x, P.param(w.ln1_w), P.param(w.ln1_b), N, C);
    linear_forward<T>(a.qkv, a.ln1, P.param(w.qkv_w), P.param(w.qkv_b), N, C, 3 * Cl);
    attention_forward<T>(a.atty, a.att, a.qkv, {B, Tn, Cl, H});
    row_parallel_forward(a.res1, a.atty, P.param(w.attn_proj_w), P.param(w.attn_proj_b), Cl, *x);
    layernorm_forward<T>(a.ln2, a.ln2_mean, a.ln2_rstd, a.res1, P.param(w.ln2_w), P.param(w.ln2_b), N, C);
    linear_forward<T>(a.fc, a.ln2, P.param(w.fc_w), P.param(w.fc_b), N, C, F);
    gelu_forward<T>(a.fc_gelu, a.fc, size_t(N) * F);
    row_parallel_forward(a.res2, a.fc_gelu, P.param(w.mlp_proj_w), P.param(w.mlp_proj_b), F, a.res1);
    x = &a.res2;
  }
  if (!layout_.last_stage()) return;
  layernorm_forward<T>(s.lnf, s.lnf_mean, s.lnf_rstd, *x, P.param(layout_.lnf_w), P.param(layout_.lnf_b), N, C);
  // logits[N, V] = lnf[N, C] wte[V, C]^T (tied head; V = this rank's vocabulary slice)
  gemm<T>({Trans::No, Trans::Yes, N, V, C, C, C, V}, T(1), s.lnf.data(), P.param(layout_.wte).data(), T(0),
          s.logits.data());
  if (!with_loss) return;
  if (!tp_) {
    cross_entropy_forward<T>(s.losses, s.lse, s.logits, s.targets, N, V);
  } else {  // vocab-parallel: combine the ranks' row max, sum of exponentials and target logit
    vp_row_max<T>(row_max_, s.logits, N, V);
    Kokkos::fence();
    const auto start = std::chrono::steady_clock::now();
    tp_->all_reduce_max(row_max_.data(), size_t(N));
    comm_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    vp_row_sum_exp<T>(row_sum_, s.logits, row_max_, N, V);
    tp_sum(row_sum_);
    vp_target_logit<T>(row_picked_, s.logits, s.targets, N, V, int64_t(tp_rank_) * V);
    tp_sum(row_picked_);
    vp_finish<T>(s.losses, s.lse, row_max_, row_sum_, row_picked_, N);
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
void Gpt<T>::run_pipeline_forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets, bool with_loss) {
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model;
  STRATA_CHECK(tokens.extent(0) == N, "gpt forward: {} tokens given, expected batch*seq_len = {}", tokens.extent(0),
               N);
  Slot& s = slot(0);
  Kokkos::deep_copy(s.tokens, tokens);
  if (with_loss) Kokkos::deep_copy(s.targets, targets);
  if (pp_ && !layout_.first_stage()) {
    pp_->recv(s.input.data(), N * C, layout_.stage - 1, kActivation);
  }
  stage_forward_body(s, with_loss);
  if (pp_ && !layout_.last_stage()) {
    Kokkos::fence();
    pp_->send(stage_output(0).data(), N * C, layout_.stage + 1, kActivation);
  }
}

template <class T>
T Gpt<T>::forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets) {
  STRATA_CHECK(targets.extent(0) == tokens.extent(0), "gpt forward: {} targets for {} tokens", targets.extent(0),
               tokens.extent(0));
  run_pipeline_forward(tokens, targets, true);
  double loss = layout_.last_stage() ? double(slots_[0].loss) : 0.0;
  if (pp_) pp_->all_reduce_sum(&loss, 1);  // every stage returns the loss
  return T(loss);
}

template <class T>
void Gpt<T>::forward_logits(const Vec<int32_t>& tokens) {
  run_pipeline_forward(tokens, tokens, false);
}

template <class T>
std::vector<double> Gpt<T>::full_logits_row(int64_t row) {
  const int64_t V = model_.vocab_size / tp_size_;
  std::vector<double> all(size_t(model_.vocab_size));
  if (layout_.last_stage()) {
    auto slice = Kokkos::subview(slots_[0].logits, std::make_pair(size_t(row * V), size_t((row + 1) * V)));
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), slice);
    std::vector<double> mine(host.data(), host.data() + V);
    if (tp_) tp_->all_gather(mine.data(), all.data(), size_t(V));
    else all = mine;
  }
  if (pp_) pp_->broadcast(all.data(), all.size() * sizeof(double), pp_->size() - 1);
  return all;
}

template <class T>
void Gpt<T>::backward(T loss_scale, const GradReadyHook& on_ready) {
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model;
  if (pp_ && !layout_.last_stage()) pp_->recv(pipe_buffer_.data(), N * C, layout_.stage + 1, kGradient);
  backward_stage(0, loss_scale, pp_ && !layout_.last_stage() ? &pipe_buffer_ : nullptr, on_ready);
  if (pp_ && !layout_.first_stage()) {
    Kokkos::fence();
    pp_->send(dres_.data(), N * C, layout_.stage - 1, kGradient);
  }
}

template <class T>
void Gpt<T>::backward_stage(int slot_index, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) {
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, N = B * Tn;
  const int V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_, Cl = C / tp_size_, F = 4 * C / tp_size_;
  auto& P = *params_;
  Slot& s = slots_.at(size_t(slot_index));
  auto ready = [&](int64_t offset) {
    if (on_ready) on_ready(offset);
  };
  if (layout_.last_stage()) {
    const T dloss = loss_scale != T(0) ? loss_scale : T(1) / T(N);
    if (!tp_) cross_entropy_backward<T>(s.logits, s.lse, s.targets, N, V, dloss);
    else vp_backward<T>(s.logits, s.lse, s.targets, N, V, int64_t(tp_rank_) * V, dloss);
    // Tied head: dlnf[N, C] = dlogits wte (summed over vocabulary slices); dwte[V, C] += dlogits^T lnf
    gemm<T>({Trans::No, Trans::No, N, C, V, V, C, C}, T(1), s.logits.data(), P.param(layout_.wte).data(), T(0),
            dln_.data());
    tp_sum(dln_);
    gemm<T>({Trans::Yes, Trans::No, V, C, N, V, C, C}, T(1), s.logits.data(), s.lnf.data(), T(1),
            P.grad(layout_.wte).data());
    Kokkos::deep_copy(dres_, T(0));
    const Vec<T>& last = stage_output(slot_index);
    layernorm_backward<T>(dres_, P.grad(layout_.lnf_w), P.grad(layout_.lnf_b), dln_, last, P.param(layout_.lnf_w),
                          s.lnf_mean, s.lnf_rstd, N, C);
    ready(P.specs()[size_t(layout_.lnf_w)].offset);
  } else {
    STRATA_CHECK(output_grad != nullptr, "gpt backward: stage {} needs the next stage's gradient", layout_.stage);
    Kokkos::deep_copy(dres_, *output_grad);
  }
  // dres_ holds the gradient of the residual stream (the same on every tp rank), walked back in place.
  for (int l = int(layout_.blocks.size()) - 1; l >= 0; --l) {
    const auto& w = layout_.blocks[size_t(l)];
    auto& a = s.blocks[size_t(l)];
    const Vec<T>& x = l > 0 ? s.blocks[size_t(l) - 1].res2 : s.input;
    linear_backward<T>(dhidden_, P.grad(w.mlp_proj_w), P.grad(w.mlp_proj_b), dres_, a.fc_gelu, P.param(w.mlp_proj_w),
                       N, F, C);
    gelu_backward<T>(dhidden_, dhidden_, a.fc, size_t(N) * F);
    linear_backward<T>(dln_, P.grad(w.fc_w), P.grad(w.fc_b), dhidden_, a.ln2, P.param(w.fc_w), N, C, F);
    tp_sum(dln_);
    layernorm_backward<T>(dres_, P.grad(w.ln2_w), P.grad(w.ln2_b), dln_, a.res1, P.param(w.ln2_w), a.ln2_mean,
                          a.ln2_rstd, N, C);
    linear_backward<T>(datty_, P.grad(w.attn_proj_w), P.grad(w.attn_proj_b), dres_, a.atty, P.param(w.attn_proj_w),
                       N, Cl, C);
    attention_backward<T>(dqkv_, att_scratch_, datty_, a.qkv, a.att, {B, Tn, Cl, H});
    linear_backward<T>(dln_, P.grad(w.qkv_w), P.grad(w.qkv_b), dqkv_, a.ln1, P.param(w.qkv_w), N, C, 3 * Cl);
    tp_sum(dln_);
    layernorm_backward<T>(dres_, P.grad(w.ln1_w), P.grad(w.ln1_b), dln_, x, P.param(w.ln1_w), a.ln1_mean, a.ln1_rstd,
                          N, C);
    ready(P.specs()[size_t(w.ln1_w)].offset);
  }
  if (layout_.first_stage()) {
    if (!tp_) {
      embedding_backward<T>(P.grad(layout_.wte), P.grad(layout_.wpe), s.tokens, dres_, B, Tn, C);
    } else {
      embedding_backward_tokens_sharded<T>(P.grad(layout_.wte), s.tokens, dres_, B, Tn, C, int64_t(tp_rank_) * V, V);
      embedding_backward_positions<T>(P.grad(layout_.wpe), dres_, B, Tn, C);
    }
  }
  ready(0);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace strata
