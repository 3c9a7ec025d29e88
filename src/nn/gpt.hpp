#pragma once
// GPT: pre-LayerNorm decoder, learned positions, token embedding tied to the output head.
// Explicit forward/backward over planned activation buffers (DESIGN.md principle 1).
#include <functional>
#include <memory>
#include <vector>

#include "comm/communicator.hpp"
#include "core/config.hpp"
#include "kernels/common.hpp"
#include "nn/gpt_layout.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

template <class T>
class Gpt {
 public:
  // Allocates parameters (uninitialised: call params().initialize or load weights) and activations for
  // `batch` sequences of model.seq_len tokens.
  Gpt(const ModelConfig& model, int batch);
  // Uses given parameters (laid out by gpt_layout for this tp rank; shared e.g. with a batch-1 copy for
  // generation). With `tp` (a tensor-parallel group of size > 1) the model holds this rank's share of every
  // split tensor and communicates over `tp` inside forward and backward.
  Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, Communicator* tp = nullptr);

  // tokens, targets: [B*T] int32. Returns the mean cross-entropy; keeps what backward needs.
  T forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets);
  // Logits only (no loss): for generation and evaluation of a prefix.
  void forward_logits(const Vec<int32_t>& tokens);
  // Called during backward with a parameter-buffer offset: from there to the end, every gradient of this
  // backward is complete (it walks the buffer from its end to offset 0), so buckets can be sent early.
  using GradReadyHook = std::function<void(int64_t ready_from)>;
  // Adds d(loss)/d(params) into params().grads(), where loss = loss_scale * (sum of the last forward's
  // token losses); loss_scale 0 means 1 / (tokens in the batch), the gradient of the mean.
  void backward(T loss_scale = T(0), const GradReadyHook& on_ready = {});

  ParamBuffer<T>& params() { return *params_; }
  std::shared_ptr<ParamBuffer<T>> shared_params() { return params_; }
  const GptLayout& layout() const { return layout_; }
  const ModelConfig& config() const { return model_; }
  int batch() const { return batch_; }
  // [B*T, V / tp]: this rank's vocabulary slice; after backward it holds dlogits.
  const Vec<T>& logits() const { return logits_; }
  // One row of the full logits (all vocabulary slices gathered) of the last forward; every tp rank calls it.
  std::vector<double> full_logits_row(int64_t row);

 private:
  struct BlockActs {
    Vec<T> ln1, ln1_mean, ln1_rstd, qkv, att, atty, res1, ln2, ln2_mean, ln2_rstd, fc, fc_gelu, res2;
  };
  void allocate();
  void run_forward(const Vec<int32_t>& tokens);
  // Row-parallel linear + residual: y = residual + b + (sum over tp ranks of x_local W_local^T).
  void row_parallel_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int in_local,
                            const Vec<T>& residual);
  void tp_sum(const Vec<T>& v);  // all-reduce over the tp group (nothing when it has one rank)

  ModelConfig model_;
  int batch_;
  Communicator* tp_;
  int tp_size_, tp_rank_;
  GptLayout layout_;
  std::shared_ptr<ParamBuffer<T>> params_;
  Vec<int32_t> tokens_, targets_;
  Vec<T> encoded_, lnf_, lnf_mean_, lnf_rstd_, logits_, losses_, lse_;
  std::vector<BlockActs> acts_;
  // Backward scratch.
  Vec<T> dres_, dln_, dhidden_, dqkv_, datty_, att_scratch_;
  // Tensor parallel only: summed row-parallel outputs, and the vocab-parallel loss's row reductions.
  Vec<T> proj_sum_, row_max_, row_sum_, row_picked_;
};

}  // namespace strata
