#include "nn/gpt.hpp"

#include "core/error.hpp"
#include "kernels/attention.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/embedding.hpp"
#include "kernels/gelu.hpp"
#include "kernels/layernorm.hpp"
#include "nn/linear.hpp"

namespace strata {

template <class T>
Gpt<T>::Gpt(const ModelConfig& model, int batch)
    : model_(model), batch_(batch), layout_(gpt_layout(model)),
      params_(std::make_shared<ParamBuffer<T>>(layout_.specs)) {
  allocate();
}

template <class T>
Gpt<T>::Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch)
    : model_(model), batch_(batch), layout_(gpt_layout(model)), params_(std::move(params)) {
  STRATA_CHECK(params_->specs().size() == layout_.specs.size(), "gpt: shared parameters have {} tensors, expected {}",
               params_->specs().size(), layout_.specs.size());
  allocate();
}

template <class T>
void Gpt<T>::allocate() {
  const size_t N = size_t(batch_) * model_.seq_len, C = model_.d_model, V = model_.vocab_size;
  const size_t H = model_.n_head, Tn = model_.seq_len;
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
    a.qkv = Vec<T>("strata::gpt::qkv", N * 3 * C);
    a.att = Vec<T>("strata::gpt::att", size_t(batch_) * H * Tn * Tn);
    a.atty = Vec<T>("strata::gpt::atty", N * C);
    a.res1 = Vec<T>("strata::gpt::res1", N * C);
    a.ln2 = Vec<T>("strata::gpt::ln2", N * C);
    a.ln2_mean = Vec<T>("strata::gpt::ln2_mean", N);
    a.ln2_rstd = Vec<T>("strata::gpt::ln2_rstd", N);
    a.fc = Vec<T>("strata::gpt::fc", N * 4 * C);
    a.fc_gelu = Vec<T>("strata::gpt::fc_gelu", N * 4 * C);
    a.res2 = Vec<T>("strata::gpt::res2", N * C);
    acts_.push_back(a);
  }
  dres_ = Vec<T>("strata::gpt::dres", N * C);
  dln_ = Vec<T>("strata::gpt::dln", N * C);
  dhidden_ = Vec<T>("strata::gpt::dhidden", N * 4 * C);
  dqkv_ = Vec<T>("strata::gpt::dqkv", N * 3 * C);
  datty_ = Vec<T>("strata::gpt::datty", N * C);
  att_scratch_ = Vec<T>("strata::gpt::att_scratch", H * Tn * Tn);
}

template <class T>
void Gpt<T>::run_forward(const Vec<int32_t>& tokens) {
  STRATA_CHECK(tokens.extent(0) == tokens_.extent(0), "gpt forward: {} tokens given, expected batch*seq_len = {}",
               tokens.extent(0), tokens_.extent(0));
  Kokkos::deep_copy(tokens_, tokens);
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, V = model_.vocab_size, N = B * Tn;
  auto& P = *params_;
  embedding_forward<T>(encoded_, tokens_, P.param(layout_.wte), P.param(layout_.wpe), B, Tn, C);
  const Vec<T>* x = &encoded_;
  for (int l = 0; l < model_.n_layer; ++l) {
    const auto& w = layout_.blocks[l];
    auto& a = acts_[l];
    layernorm_forward<T>(a.ln1, a.ln1_mean, a.ln1_rstd, *x, P.param(w.ln1_w), P.param(w.ln1_b), N, C);
    linear_forward<T>(a.qkv, a.ln1, P.param(w.qkv_w), P.param(w.qkv_b), N, C, 3 * C);
    attention_forward<T>(a.atty, a.att, a.qkv, {B, Tn, C, model_.n_head});
    linear_forward<T>(a.res1, a.atty, P.param(w.attn_proj_w), P.param(w.attn_proj_b), N, C, C, x);
    layernorm_forward<T>(a.ln2, a.ln2_mean, a.ln2_rstd, a.res1, P.param(w.ln2_w), P.param(w.ln2_b), N, C);
    linear_forward<T>(a.fc, a.ln2, P.param(w.fc_w), P.param(w.fc_b), N, C, 4 * C);
    gelu_forward<T>(a.fc_gelu, a.fc, size_t(N) * 4 * C);
    linear_forward<T>(a.res2, a.fc_gelu, P.param(w.mlp_proj_w), P.param(w.mlp_proj_b), N, 4 * C, C, &a.res1);
    x = &a.res2;
  }
  layernorm_forward<T>(lnf_, lnf_mean_, lnf_rstd_, *x, P.param(layout_.lnf_w), P.param(layout_.lnf_b), N, C);
  // logits[N, V] = lnf[N, C] wte[V, C]^T (tied head)
  gemm<T>({Trans::No, Trans::Yes, N, V, C, C, C, V}, T(1), lnf_.data(), P.param(layout_.wte).data(), T(0),
          logits_.data());
}

template <class T>
void Gpt<T>::forward_logits(const Vec<int32_t>& tokens) {
  run_forward(tokens);
}

template <class T>
T Gpt<T>::forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets) {
  STRATA_CHECK(targets.extent(0) == targets_.extent(0), "gpt forward: {} targets given, expected {}",
               targets.extent(0), targets_.extent(0));
  run_forward(tokens);
  Kokkos::deep_copy(targets_, targets);
  const int N = batch_ * model_.seq_len;
  cross_entropy_forward<T>(losses_, lse_, logits_, targets_, N, model_.vocab_size);
  return mean_loss<T>(losses_, N);
}

template <class T>
void Gpt<T>::backward(T loss_scale, const GradReadyHook& on_ready) {
  const int B = batch_, Tn = model_.seq_len, C = model_.d_model, V = model_.vocab_size, N = B * Tn;
  auto& P = *params_;
  auto ready = [&](int tensor) {
    if (on_ready) on_ready(P.specs()[tensor].offset);
  };
  cross_entropy_backward<T>(logits_, lse_, targets_, N, V, loss_scale != T(0) ? loss_scale : T(1) / T(N));
  // Tied head: dlnf[N, C] = dlogits wte ; dwte[V, C] += dlogits^T lnf
  gemm<T>({Trans::No, Trans::No, N, C, V, V, C, C}, T(1), logits_.data(), P.param(layout_.wte).data(), T(0),
          dln_.data());
  gemm<T>({Trans::Yes, Trans::No, V, C, N, V, C, C}, T(1), logits_.data(), lnf_.data(), T(1),
          P.grad(layout_.wte).data());
  Kokkos::deep_copy(dres_, T(0));
  const Vec<T>& last = model_.n_layer > 0 ? acts_.back().res2 : encoded_;
  layernorm_backward<T>(dres_, P.grad(layout_.lnf_w), P.grad(layout_.lnf_b), dln_, last, P.param(layout_.lnf_w),
                        lnf_mean_, lnf_rstd_, N, C);
  ready(layout_.lnf_w);
  // dres_ holds the gradient of the residual stream, walked back through the blocks in place.
  for (int l = model_.n_layer - 1; l >= 0; --l) {
    const auto& w = layout_.blocks[l];
    auto& a = acts_[l];
    const Vec<T>& x = l > 0 ? acts_[l - 1].res2 : encoded_;
    linear_backward<T>(dhidden_, P.grad(w.mlp_proj_w), P.grad(w.mlp_proj_b), dres_, a.fc_gelu, P.param(w.mlp_proj_w),
                       N, 4 * C, C);
    gelu_backward<T>(dhidden_, dhidden_, a.fc, size_t(N) * 4 * C);
    linear_backward<T>(dln_, P.grad(w.fc_w), P.grad(w.fc_b), dhidden_, a.ln2, P.param(w.fc_w), N, C, 4 * C);
    layernorm_backward<T>(dres_, P.grad(w.ln2_w), P.grad(w.ln2_b), dln_, a.res1, P.param(w.ln2_w), a.ln2_mean,
                          a.ln2_rstd, N, C);
    linear_backward<T>(datty_, P.grad(w.attn_proj_w), P.grad(w.attn_proj_b), dres_, a.atty, P.param(w.attn_proj_w),
                       N, C, C);
    attention_backward<T>(dqkv_, att_scratch_, datty_, a.qkv, a.att, {B, Tn, C, model_.n_head});
    linear_backward<T>(dln_, P.grad(w.qkv_w), P.grad(w.qkv_b), dqkv_, a.ln1, P.param(w.qkv_w), N, C, 3 * C);
    layernorm_backward<T>(dres_, P.grad(w.ln1_w), P.grad(w.ln1_b), dln_, x, P.param(w.ln1_w), a.ln1_mean, a.ln1_rstd,
                          N, C);
    ready(w.ln1_w);
  }
  embedding_backward<T>(P.grad(layout_.wte), P.grad(layout_.wpe), tokens_, dres_, B, Tn, C);
  ready(layout_.wte);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace strata
