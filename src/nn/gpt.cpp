#include "nn/gpt.hpp"

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

namespace strata {

template <class T>
Gpt<T>::Gpt(const ModelConfig& model, int batch)
    : model_(model), batch_(batch), tp_(nullptr), tp_size_(1), tp_rank_(0), layout_(gpt_layout(model)),
      params_(std::make_shared<ParamBuffer<T>>(layout_.specs)) {
  allocate();
}

template <class T>
Gpt<T>::Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, Communicator* tp)
    : model_(model), batch_(batch), tp_(tp && tp->size() > 1 ? tp : nullptr), tp_size_(tp_ ? tp_->size() : 1),
      tp_rank_(tp_ ? tp_->rank() : 0), layout_(gpt_layout(model, tp_rank_, tp_size_)), params_(std::move(params)) {
  STRATA_CHECK(params_->specs().size() == layout_.specs.size(), "gpt: shared parameters have {} tensors, expected {}",
               params_->specs().size(), layout_.specs.size());
  for (size_t i = 0; i < layout_.specs.size(); ++i)
    STRATA_CHECK(params_->specs()[i].shape == layout_.specs[i].shape,
                 "gpt: parameter '{}' was laid out for another tensor-parallel split", layout_.specs[i].name);
  allocate();
}

template <class T>
void Gpt<T>::allocate() {
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model, Tn = model_.seq_len;
  const size_t V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_;  // this rank's share
  const size_t Cl = C / tp_size_, F = 4 * C / tp_size_;
  tokens_ = Vec<int32_t>("strata::gpt::tokens", N);
  targets_ = Vec<int32_t>("strata::gpt::targets", N);
  encoded_ = Vec<T>("strata::gpt::encoded", N * C);
  lnf_ = Vec<T>("strata::gpt::lnf", N * C);
  lnf_mean_ = Vec<T>("strata::gpt::lnf_mean", N);
  lnf_rstd_ = Vec<T>("strata::gpt::lnf_rstd", N);
  logits_ = Vec<T>("strata::gpt::logits", N * V);
  losses_ = Vec<T>("strata::gpt::losses", N);
  lse_ = Vec<T>("strata::gpt::lse", N);
  acts_.clear();
  for (int l = 0; l < model_.n_layer; ++l) {
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
    acts_.push_back(a);
  }
  dres_ = Vec<T>("strata::gpt::dres", N * C);
  dln_ = Vec<T>("strata::gpt::dln", N * C);
  dhidden_ = Vec<T>("strata::gpt::dhidden", N * F);
  dqkv_ = Vec<T>("strata::gpt::dqkv", N * 3 * Cl);
  datty_ = Vec<T>("strata::gpt::datty", N * Cl);
  att_scratch_ = Vec<T>("strata::gpt::att_scratch", H * Tn * Tn);
  if (tp_) {
    proj_sum_ = Vec<T>("strata::gpt::proj_sum", N * C);
    row_max_ = Vec<T>("strata::gpt::row_max", N);
    row_sum_ = Vec<T>("strata::gpt::row_sum", N);
    row_picked_ = Vec<T>("strata::gpt::row_picked", N);
  }
}

template <class T>
void Gpt<T>::tp_sum(const Vec<T>& v) {
  if (!tp_) return;
  Kokkos::fence();
  tp_->all_reduce_sum(v.data(), v.extent(0));
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
void Gpt<T>::run_forward(const Vec<int32_t>& tokens) {
  STRATA_CHECK(tokens.extent(0) == tokens_.extent(0), "gpt forward: {} tokens given, expected batch*seq_len = {}",
               tokens.extent(0), tokens_.extent(0));
  Kokkos::deep_copy(tokens_, tokens);
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, N = B * Tn;
  const int V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_, Cl = C / tp_size_, F = 4 * C / tp_size_;
  auto& P = *params_;
  if (!tp_) {
    embedding_forward<T>(encoded_, tokens_, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C);
  } else {
    embedding_forward_sharded<T>(encoded_, tokens_, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C,
                                 int64_t(tp_rank_) * V, V, tp_rank_ == 0);
    tp_sum(encoded_);
  }
  const Vec<T>* x = &encoded_;
  for (int l = 0; l < model_.n_layer; ++l) {
    const auto& w = layout_.blocks[l];
    auto& a = acts_[l];
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
  layernorm_forward<T>(lnf_, lnf_mean_, lnf_rstd_, *x, P.param(layout_.lnf_w), P.param(layout_.lnf_b), N, C);
  // logits[N, V] = lnf[N, C] wte[V, C]^T (tied head; V = this rank's vocabulary slice)
  gemm<T>({Trans::No, Trans::Yes, N, V, C, C, C, V}, T(1), lnf_.data(), P.param(layout_.wte).data(), T(0),
          logits_.data());
}

template <class T>
void Gpt<T>::forward_logits(const Vec<int32_t>& tokens) {
  run_forward(tokens);
}

template <class T>
std::vector<double> Gpt<T>::full_logits_row(int64_t row) {
  const int64_t V = model_.vocab_size / tp_size_;
  auto slice = Kokkos::subview(logits_, std::make_pair(size_t(row * V), size_t((row + 1) * V)));
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), slice);
  std::vector<double> mine(host.data(), host.data() + V), all(size_t(V) * tp_size_);
  if (tp_) tp_->all_gather(mine.data(), all.data(), size_t(V));
  else all = mine;
  return all;
}

template <class T>
T Gpt<T>::forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets) {
  STRATA_CHECK(targets.extent(0) == targets_.extent(0), "gpt forward: {} targets given, expected {}",
               targets.extent(0), targets_.extent(0));
  run_forward(tokens);
  Kokkos::deep_copy(targets_, targets);
  const int N = batch_ * model_.seq_len, V = model_.vocab_size / tp_size_;
  if (!tp_) {
    cross_entropy_forward<T>(losses_, lse_, logits_, targets_, N, V);
  } else {  // vocab-parallel: combine the ranks' row max, sum of exponentials and target logit
    vp_row_max<T>(row_max_, logits_, N, V);
    Kokkos::fence();
    tp_->all_reduce_max(row_max_.data(), size_t(N));
    vp_row_sum_exp<T>(row_sum_, logits_, row_max_, N, V);
    tp_sum(row_sum_);
    vp_target_logit<T>(row_picked_, logits_, targets_, N, V, int64_t(tp_rank_) * V);
    tp_sum(row_picked_);
    vp_finish<T>(losses_, lse_, row_max_, row_sum_, row_picked_, N);
  }
  return mean_loss<T>(losses_, N);
}

template <class T>
void Gpt<T>::backward(T loss_scale, const GradReadyHook& on_ready) {
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, N = B * Tn;
  const int V = model_.vocab_size / tp_size_, H = model_.n_head / tp_size_, Cl = C / tp_size_, F = 4 * C / tp_size_;
  auto& P = *params_;
  auto ready = [&](int tensor) {
    if (on_ready) on_ready(P.specs()[tensor].offset);
  };
  const T dloss = loss_scale != T(0) ? loss_scale : T(1) / T(N);
  if (!tp_) cross_entropy_backward<T>(logits_, lse_, targets_, N, V, dloss);
  else vp_backward<T>(logits_, lse_, targets_, N, V, int64_t(tp_rank_) * V, dloss);
  // Tied head: dlnf[N, C] = dlogits wte (summed over vocabulary slices); dwte[V, C] += dlogits^T lnf
  gemm<T>({Trans::No, Trans::No, N, C, V, V, C, C}, T(1), logits_.data(), P.param(layout_.wte).data(), T(0),
          dln_.data());
  tp_sum(dln_);
  gemm<T>({Trans::Yes, Trans::No, V, C, N, V, C, C}, T(1), logits_.data(), lnf_.data(), T(1),
          P.grad(layout_.wte).data());
  Kokkos::deep_copy(dres_, T(0));
  const Vec<T>& last = model_.n_layer > 0 ? acts_.back().res2 : encoded_;
  layernorm_backward<T>(dres_, P.grad(layout_.lnf_w), P.grad(layout_.lnf_b), dln_, last, P.param(layout_.lnf_w),
                        lnf_mean_, lnf_rstd_, N, C);
  ready(layout_.lnf_w);
  // dres_ holds the gradient of the residual stream (the same on every tp rank), walked back in place.
  for (int l = model_.n_layer - 1; l >= 0; --l) {
    const auto& w = layout_.blocks[l];
    auto& a = acts_[l];
    const Vec<T>& x = l > 0 ? acts_[l - 1].res2 : encoded_;
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
    ready(w.ln1_w);
  }
  if (!tp_) {
    embedding_backward<T>(P.grad(layout_.wte), P.grad(layout_.wpe), tokens_, dres_, B, Tn, C);
  } else {
    embedding_backward_tokens_sharded<T>(P.grad(layout_.wte), tokens_, dres_, B, Tn, C, int64_t(tp_rank_) * V, V);
    embedding_backward_positions<T>(P.grad(layout_.wpe), dres_, B, Tn, C);
  }
  ready(layout_.wte);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace strata
