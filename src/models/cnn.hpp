#pragma once
// CNN image classifier (models/cnn_layout.hpp): conv blocks (conv -> GroupNorm -> ReLU/GELU -> max/avg pooling),
// flatten, an optional hidden layer, the classifier head and softmax cross-entropy over one label per image.
// Explicit forward/backward over planned buffers; pipeline stages hold contiguous blocks (the last also the
// head). Tensor parallelism splits channels through parallel/'s convolution pairs: even blocks column-parallel
// (output channels split; GroupNorm, activation and pooling act on a rank's own channels and whole groups), odd
// blocks row-parallel (partial sums over the group), the head row-parallel after a column-parallel last block.
// GroupNorm normalizes each image on its own, so any data-parallel layout computes exactly what one rank does.
#include <deque>
#include <memory>
#include <vector>

#include "core/config.hpp"
#include "kernels/activation.hpp"
#include "kernels/conv2d.hpp"
#include "kernels/dropout.hpp"
#include "models/cnn_layout.hpp"
#include "nn/model.hpp"
#include "parallel/tensor_parallel.hpp"

namespace strata {

template <class T>
class Cnn final : public Model<T> {
 public:
  // A whole model on one rank with its own (uninitialised) parameters, for `batch` images.
  Cnn(const ModelConfig& model, int batch);
  // This rank's part: `params` laid out by cnn_layout for `placement`; tp is the tensor-parallel group of
  // placement.tp_size ranks (it must outlive the model).
  Cnn(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement,
      TensorParallel<T>& tp);

  bool token_inputs() const override { return false; }
  int64_t inputs_per_sample() const override { return layout_.input_size; }
  int64_t targets_per_sample() const override { return 1; }
  int64_t classes() const override { return layout_.classes; }
  size_t stage_input_size() const override;
  size_t stage_output_size() const override;

  // batch.features: [B, C, H, W]; batch.targets: [B]. The last stage leaves logits [B, classes].
  void forward_stage(int slot, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) override;
  const Vec<T>& stage_output(int slot) const override;  // [B, C', H', W'] of the stage's last block
  T stage_loss(int slot) const override;
  const Vec<T>& logits(int slot) const override;
  void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) override;
  const Vec<T>& input_grad() const override { return dinput_; }
  int slots_allocated() const override { return int(slots_.size()); }
  size_t slot_bytes() const override;
  void allocate_slots(int n) override {
    for (int i = int(slots_.size()); i < n; ++i) slot(i);
  }

  const CnnLayout& layout() const { return layout_; }

 private:
  struct BlockActs {
    Vec<T> conv, norm, mean, rstd, act, pooled;  // norm/mean/rstd: with GroupNorm; pooled: with pooling
    Vec<int32_t> argmax;                         // max pooling
    const Vec<T>& pre_activation() const { return norm.extent(0) > 0 ? norm : conv; }
    const Vec<T>& output() const { return pooled.extent(0) > 0 ? pooled : act; }
  };
  struct Slot {
    Vec<T> input;  // the images (first stage) or the previous stage's output
    std::vector<BlockActs> blocks;
    Vec<T> hidden_pre, hidden_act, logits, losses, lse;  // last stage
    Vec<T> dropped_features;                             // last stage with dropout: the head's input after its mask
    Vec<int32_t> targets;
    T loss = 0;
    DropoutContext dropout;  // the forward's, for backward to draw the same masks
    Vec<T> teacher;          // distillation: the teacher's logits (last stage)
    bool distilled = false;  // this slot's loss is the distillation loss
  };
  Slot& slot(int i);
  // The slot's dropout masks over the flattened features [B, flat] (this rank's channels) and the hidden layer
  // [B, hidden]; inactive unless its microbatch trains with train.dropout > 0.
  DropoutMask features_mask(const Slot& s) const;
  DropoutMask hidden_mask(const Slot& s) const;
  // The head's input: the last block's output, or its dropped copy.
  const Vec<T>& head_input(const Slot& s) const;
  void allocate_scratch();
  Conv2dShape conv_shape(const CnnLayout::Block& b) const;  // this rank's convolution (local channels)
  // Per image, on this rank: a block's input, its convolution output and its output (after pooling).
  static int64_t input_size(const CnnLayout::Block& b) { return int64_t(b.in_local) * b.g.in_h * b.g.in_w; }
  static int64_t conv_size(const CnnLayout::Block& b) { return int64_t(b.out_local) * b.g.conv_h * b.g.conv_w; }
  static int64_t output_size(const CnnLayout::Block& b) { return int64_t(b.out_local) * b.g.out_h * b.g.out_w; }
  int norm_groups(const CnnLayout::Block& b) const;  // this rank's GroupNorm groups
  int64_t flat_local() const;                        // features into the head on this rank

  ModelConfig model_;
  Activation activation_;
  std::unique_ptr<TensorParallel<T>> own_tp_;  // the one-rank constructor's group of one
  TensorParallel<T>& tp_;
  CnnLayout layout_;
  std::deque<Slot> slots_;
  Vec<T> grad_a_, grad_b_, dinput_, workspace_;  // backward scratch (one backward at a time), conv workspace
};

}  // namespace strata
