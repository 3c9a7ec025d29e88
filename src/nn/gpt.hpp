#pragma once
// GPT: pre-LayerNorm decoder, learned positions, token embedding tied to the output head.
// Explicit forward/backward over planned activation buffers (DESIGN.md principle 1), on this rank's share of
// the model: its tensor-parallel slice of each tensor (principle 6) and its pipeline stage's layers
// (principle 7).
#include <deque>
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
  // A whole model on one rank with its own (uninitialised) parameters, for `batch` sequences of seq_len.
  Gpt(const ModelConfig& model, int batch);
  // Uses given parameters, laid out by gpt_layout for this rank's tp slice and pipeline stage (shared e.g.
  // with a batch-1 copy for generation). `tp` (size > 1): the model communicates over it inside forward and
  // backward. `pp` (size > 1): this rank is stage pp->rank() of pp->size(); forward/backward below then run
  // one microbatch through all stages, and the stage-level calls serve the pipeline schedules.
  Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, Communicator* tp = nullptr,
      Communicator* pp = nullptr);

  // One microbatch through the whole model (all stages). tokens, targets: [B*T] int32 (every stage passes
  // them; the first uses the tokens, the last the targets). Returns the mean cross-entropy on every stage.
  T forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets);
  // Logits only (no loss), for generation; full_logits_row then gives one row on every stage.
  void forward_logits(const Vec<int32_t>& tokens);
  std::vector<double> full_logits_row(int64_t row);
  // The last forward's logits on the last stage: [B*T, V / tp], this rank's vocabulary slice.
  const Vec<T>& logits() const { return slots_.at(0).logits; }

  // Called during backward with a parameter-buffer offset: from there to the end, every gradient of this
  // backward is complete (it walks the buffer from its end to offset 0), so buckets can be sent early.
  using GradReadyHook = std::function<void(int64_t ready_from)>;
  // Adds d(loss)/d(params) into params().grads() for the last forward, where loss = loss_scale * (sum of its
  // token losses); loss_scale 0 means 1 / (tokens in the batch), the gradient of the mean.
  void backward(T loss_scale = T(0), const GradReadyHook& on_ready = {});

  // ---- Stage level (pipeline schedules). A slot holds one microbatch's activations from its forward until
  // its backward; slots are allocated on first use, so the peak number of slots is the activation memory.
  // Forward of this stage: the first stage embeds `tokens`; the others start from `input` [B*T, C] (the
  // previous stage's output). The last stage computes the loss against `targets`; others leave
  // stage_output(slot) [B*T, C] for the next stage.
  void forward_stage(int slot, const Vec<int32_t>& tokens, const Vec<int32_t>& targets, const Vec<T>* input);
  const Vec<T>& stage_output(int slot) const;
  T stage_loss(int slot) const;  // last stage: the mean loss of the slot's microbatch
  // Backward of this stage: the last stage starts from its loss, the others from `output_grad` [B*T, C] (the
  // next stage's input gradient). Afterwards input_grad() [B*T, C] holds the gradient for the previous stage.
  void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready = {});
  const Vec<T>& input_grad() const { return dres_; }
  int slots_allocated() const { return int(slots_.size()); }
  // Milliseconds spent in tensor-parallel communication since the last call (and resets the count).
  double take_comm_ms();

  ParamBuffer<T>& params() { return *params_; }
  std::shared_ptr<ParamBuffer<T>> shared_params() { return params_; }
  const GptLayout& layout() const { return layout_; }
  const ModelConfig& config() const { return model_; }
  int batch() const { return batch_; }

 private:
  struct BlockActs {
    Vec<T> ln1, ln1_mean, ln1_rstd, qkv, att, atty, res1, ln2, ln2_mean, ln2_rstd, fc, fc_gelu, res2;
  };
  struct Slot {
    Vec<int32_t> tokens, targets;
    Vec<T> input;  // the embedding output (first stage) or the previous stage's output
    std::vector<BlockActs> blocks;
    Vec<T> lnf, lnf_mean, lnf_rstd, logits, losses, lse;  // last stage
    T loss = 0;
  };
  Slot& slot(int i);
  void allocate_scratch();
  void stage_forward_body(Slot& s, bool with_loss);
  void run_pipeline_forward(const Vec<int32_t>& tokens, const Vec<int32_t>& targets, bool with_loss);
  // Row-parallel linear + residual: y = residual + b + (sum over tp ranks of x_local W_local^T).
  void row_parallel_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int in_local,
                            const Vec<T>& residual);
  void tp_sum(const Vec<T>& v);  // all-reduce over the tp group (nothing when it has one rank)

  ModelConfig model_;
  int batch_;
  Communicator* tp_;
  Communicator* pp_;
  int tp_size_, tp_rank_;
  GptLayout layout_;
  std::shared_ptr<ParamBuffer<T>> params_;
  std::deque<Slot> slots_;  // deque: references stay valid as slots are added
  // Backward scratch, shared by all slots (one backward at a time).
  Vec<T> dres_, dln_, dhidden_, dqkv_, datty_, att_scratch_, pipe_buffer_;
  // Tensor parallel only: summed row-parallel outputs, and the vocab-parallel loss's row reductions.
  Vec<T> proj_sum_, row_max_, row_sum_, row_picked_;
  double comm_ms_ = 0;
};

}  // namespace strata
