#pragma once
// Recurrent sequence classifier (models/lstm_layout.hpp): stacked LSTM or GRU layers with backpropagation through
// time (nn/recurrent.hpp), an optional hidden layer and the classifier head over the last step (one label per
// sequence) or every step (one label per step), softmax cross-entropy. Pipeline stages hold contiguous layers
// (the last also the head); no tensor-parallel split.
#include <deque>
#include <memory>
#include <vector>

#include "core/config.hpp"
#include "kernels/activation.hpp"
#include "kernels/dropout.hpp"
#include "models/lstm_layout.hpp"
#include "nn/model.hpp"
#include "nn/recurrent.hpp"

namespace strata {

template <class T>
class Lstm final : public Model<T> {
 public:
  Lstm(const ModelConfig& model, int batch);  // a whole model on one rank, own (uninitialised) parameters
  Lstm(std::shared_ptr<ParamBuffer<T>> params, const ModelConfig& model, int batch, const Placement& placement);

  bool token_inputs() const override { return false; }
  int64_t inputs_per_sample() const override { return int64_t(layout_.steps) * layout_.features; }
  int64_t targets_per_sample() const override { return layout_.per_step ? layout_.steps : 1; }
  int64_t classes() const override { return layout_.classes; }
  size_t stage_input_size() const override;
  size_t stage_output_size() const override;

  // batch.features [B, T, F]; batch.targets [B] or [B, T]. The last stage leaves logits [rows, classes].
  void forward_stage(int slot, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) override;
  const Vec<T>& stage_output(int slot) const override;  // [B, T, H]: the stage's last layer's states
  T stage_loss(int slot) const override;
  const Vec<T>& logits(int slot) const override;
  void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) override;
  const Vec<T>& input_grad() const override { return dinput_; }
  int slots_allocated() const override { return int(slots_.size()); }
  size_t slot_bytes() const override;
  void allocate_slots(int n) override {
    for (int i = int(slots_.size()); i < n; ++i) slot(i);
  }

  const LstmLayout& layout() const { return layout_; }

 private:
  struct LayerActs {
    Vec<T> h, c, gates, hn;  // c: LSTM; hn: GRU
    Vec<T> dropped;          // with dropout: h after its mask, what the next layer (or the head) reads
  };
  struct Slot {
    Vec<T> input;  // the sequences (first stage) or the previous stage's states
    std::vector<LayerActs> layers;
    Vec<T> last, hidden_pre, hidden_act, logits, losses, lse;  // last stage; last: [B, H] (labels = sequence)
    Vec<int32_t> targets;
    T loss = 0;
    DropoutContext dropout;  // the forward's, for backward to draw the same masks
    Vec<T> teacher;          // distillation: the teacher's logits (last stage)
    bool distilled = false;  // this slot's loss is the distillation loss
  };
  Slot& slot(int i);
  // The slot's dropout masks over layer l's states [B, T, H] and the hidden layer [rows, hidden]; inactive unless
  // its microbatch trains with train.dropout > 0.
  DropoutMask layer_mask(const Slot& s, size_t l) const;
  DropoutMask hidden_mask(const Slot& s) const;
  // What follows layer l reads: its states, or their dropped copy.
  static const Vec<T>& layer_output(const LayerActs& a) { return a.dropped.extent(0) > 0 ? a.dropped : a.h; }
  RecurrentShape shape(const LstmLayout::Layer& layer) const;
  int rows() const { return this->batch() * int(targets_per_sample()); }

  ModelConfig model_;
  Activation activation_;
  LstmLayout layout_;
  std::deque<Slot> slots_;
  Vec<T> grad_a_, grad_b_, dinput_, workspace_;
};

}  // namespace strata
