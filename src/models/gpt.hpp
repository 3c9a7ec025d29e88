#pragma once
// GPT: pre-LayerNorm decoder, learned positions, token embedding tied to the output head.
// Explicit forward/backward over planned activation buffers (DESIGN.md principle 1) on this rank's share of the
// model: its tensor-parallel slice of each tensor and its pipeline stage's layers (models/gpt_layout.hpp). The
// tensor-parallel layers are parallel/'s pairs (a group of one makes them the plain layers); activations between
// stages, microbatch order and gradient reduction are the pipeline runner's and data parallelism's.
#include <deque>
#include <memory>
#include <vector>

#include "core/config.hpp"
#include "kernels/bf16_storage.hpp"
#include "kernels/dropout.hpp"
#include "models/gpt_layout.hpp"
#include "nn/model.hpp"
#include "parallel/tensor_parallel.hpp"

namespace strata {

template <class T>
class Gpt final : public Model<T> {
 public:
  // A whole model on one rank with its own (uninitialised) parameters, for `batch` sequences of seq_len.
  Gpt(const ModelConfig& model, int batch);
  // This rank's part: `params` laid out by gpt_layout for `placement` (shared e.g. with a batch-1 copy for
  // generation); `tp` is the tensor-parallel group of placement.tp_size ranks (it must outlive the model).
  Gpt(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement,
      TensorParallel<T>& tp);

  bool token_inputs() const override { return true; }
  int64_t inputs_per_sample() const override { return model_.seq_len; }
  int64_t targets_per_sample() const override { return model_.seq_len; }
  int64_t classes() const override { return model_.vocab_size; }
  size_t stage_input_size() const override;
  size_t stage_output_size() const override;

  // batch.tokens, batch.targets: [B*T] int32. The first stage embeds the tokens, the last computes logits
  // [B*T, V/tp] and the mean cross-entropy.
  void forward_stage(int slot, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) override;
  const Vec<T>& stage_output(int slot) const override;  // [B*T, C]
  T stage_loss(int slot) const override;
  const Vec<T>& logits(int slot) const override;
  void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) override;
  const Vec<T>& input_grad() const override { return dres_; }  // [B*T, C]
  int slots_allocated() const override { return int(slots_.size()); }
  void allocate_slots(int n) override {
    for (int i = int(slots_.size()); i < n; ++i) slot(i);
  }
  // Float models only: ln1, qkv, attention output, ln2 and the GELU output are then packed per slot.
  void store_gemm_inputs_bf16(bool on) override;
  size_t slot_bytes() const override;

  const GptLayout& layout() const { return layout_; }
  const ModelConfig& config() const { return model_; }

 private:
  struct BlockActs {
    // With bf16 storage, ln1, qkv, atty, ln2 and fc_gelu are the shared working buffers (gemm_inputs_) and the
    // slot keeps their bf16 copies in `packed`.
    Vec<T> ln1, ln1_mean, ln1_rstd, qkv, atty, res1, ln2, ln2_mean, ln2_rstd, fc, fc_gelu, res2;
    std::vector<Bf16Vec> packed;
  };
  struct Slot {
    Vec<int32_t> tokens, targets;
    Vec<T> input;  // the embedding output (first stage) or the previous stage's output
    std::vector<BlockActs> blocks;
    Vec<T> lnf, lnf_mean, lnf_rstd, logits, losses, lse;  // last stage
    T loss = 0;
    DropoutContext dropout;  // the forward's, for backward to draw the same masks
    Vec<T> teacher;          // distillation: this rank's vocabulary columns of the teacher's logits [N, V/tp]
    Vec<T> distill_stats;    // distillation: the rows' softmax statistics over the whole vocabulary [4N]
    bool distilled = false;  // this slot's loss is the distillation loss
  };
  Slot& slot(int i);
  void allocate_scratch();
  // The GEMM-only activations of a block: packed after its forward, widened before its backward (bf16 storage).
  std::vector<Vec<T>*> gemm_inputs(BlockActs& a) { return {&a.ln1, &a.qkv, &a.atty, &a.ln2, &a.fc_gelu}; }
  void pack(BlockActs& a);
  void unpack(BlockActs& a);
  // The slot's dropout masks (inactive unless its microbatch trains with that site's rate > 0): the embedding
  // output and the residual branches over [B, T, C], site names "dropout.<site>" or "dropout.<site>.<layer>";
  // the attention probabilities of global layer `layer`.
  DropoutMask residual_mask(const Slot& s, const std::string& site, double p) const;
  AttentionDropout attention_dropout(const Slot& s, int layer) const;

  ModelConfig model_;
  std::unique_ptr<TensorParallel<T>> own_tp_;  // the one-rank constructor's group of one
  TensorParallel<T>& tp_;
  GptLayout layout_;
  std::deque<Slot> slots_;  // deque: references stay valid as slots are added
  bool bf16_storage_ = false;
  BlockActs gemm_inputs_;  // bf16 storage: the float working copies of ln1, qkv, atty, ln2, fc_gelu
  // Backward scratch, shared by all slots (one backward at a time).
  Vec<T> dres_, dln_, dhidden_, dqkv_, datty_, att_scratch_;
  Vec<T> branch_;  // residual dropout: a branch's output before its mask (forward), its gradient (backward)
};

}  // namespace strata
