#pragma once
// The model interface (DESIGN.md principle 13, docs/architecture.md). A model (GPT, CNN, LSTM) declares its
// parameter tensors (ParamBuffer's TensorSpecs: name, global shape, tensor-parallel split, decay, tied copies),
// runs forward and backward of one pipeline stage on one microbatch, and leaves its loss and logits on the last
// stage. Everything else is done from outside, the same way for every model: the pipeline runner (parallel/)
// moves activations between stages and orders microbatches, data parallelism (parallel/) reduces gradients and
// steps the optimizer, the trainer, evaluation, weights files and checkpoints work from the spec list.
#include <cstdint>
#include <functional>
#include <memory>

#include "kernels/common.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// Where this rank's part of a model sits: its tensor-parallel slice and its pipeline stage.
struct Placement {
  int tp_rank = 0, tp_size = 1;
  int stage = 0, stages = 1;
  bool first_stage() const { return stage == 0; }
  bool last_stage() const { return stage == stages - 1; }
};

// Where a training microbatch's dropout masks come from (kernels/dropout.hpp): the run's seed, the step, and the
// position of the microbatch's first sample in the step's global batch. Off (the default) in evaluation.
struct DropoutContext {
  bool on = false;
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t first_sample = 0;
};

// The drop probabilities of each site (train.dropout and its per-site fields; 0: off). GPT: embedding output,
// attention probabilities, residual branches (attention and MLP outputs). CNN: the head's inputs (flattened features,
// hidden layer). LSTM: each recurrent layer's output states and the hidden layer.
struct DropoutRates {
  double embedding = 0, attention = 0, residual = 0, hidden = 0;
  bool any() const { return embedding > 0 || attention > 0 || residual > 0 || hidden > 0; }
};

// One microbatch on the device. Language models read `tokens`, the others `features`; `targets` holds one class
// id per target row (a token position, a sequence, or a sequence step).
template <class T>
struct MicroBatch {
  Vec<int32_t> tokens;   // [B * seq_len] token ids (language models; empty otherwise)
  Vec<T> features;       // [B * sample elements]: images [B, C, H, W], sequences [B, T, F] (empty for tokens)
  Vec<int32_t> targets;  // [B * targets_per_sample]
  DropoutContext dropout;
  Vec<T> teacher_logits;  // distillation: the teacher's logits [B * targets_per_sample, classes] (last stage)
};

// Knowledge distillation of the loss (`[distill]`, kernels/distillation.hpp): alpha = the soft loss's weight (0: off).
struct Distillation {
  double temperature = 1, alpha = 0;
  bool on() const { return alpha > 0; }
};

// Called during backward with a parameter-buffer offset: from there to the end of the buffer, every gradient of
// this backward is complete, so data parallelism can send those buckets while backward goes on.
using GradReadyHook = std::function<void(int64_t ready_from)>;

template <class T>
class Model {
 public:
  Model(const Placement& placement, int batch, std::shared_ptr<ParamBuffer<T>> params);
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Placement& placement() const { return placement_; }
  int batch() const { return batch_; }  // samples per microbatch
  ParamBuffer<T>& params() { return *params_; }
  std::shared_ptr<ParamBuffer<T>> shared_params() { return params_; }

  // Inputs per sample: token ids (token_inputs(): a language model) or feature values (the sample's elements).
  virtual bool token_inputs() const = 0;
  virtual int64_t inputs_per_sample() const = 0;
  // Target rows per sample (tokens per sequence, 1 per image, T per sequence with per-step labels) and classes
  // per row over all tensor-parallel ranks (the vocabulary for a language model). The last stage's logits are
  // [B * targets_per_sample, classes() / tp_size].
  virtual int64_t targets_per_sample() const = 0;
  virtual int64_t classes() const = 0;
  // Elements of the activation this stage receives from the previous one (0 on the first stage) and sends to the
  // next one (0 on the last), per microbatch.
  virtual size_t stage_input_size() const = 0;
  virtual size_t stage_output_size() const = 0;

  // ---- One stage on one microbatch. A slot holds a microbatch's activations from its forward until its backward;
  // slots are allocated on first use, so the most slots in use is the activation memory.
  // The first stage reads `batch`; the others start from `input` (the previous stage's stage_output). The last
  // stage computes logits and, with `with_loss`, the loss against batch.targets (which every stage is given).
  virtual void forward_stage(int slot, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) = 0;
  virtual const Vec<T>& stage_output(int slot) const = 0;  // not on the last stage: [stage_output_size()]
  virtual T stage_loss(int slot) const = 0;                // last stage: the mean loss over the slot's target rows
  virtual const Vec<T>& logits(int slot) const = 0;        // last stage
  // Adds d(loss)/d(params) into params().grads(), where loss = loss_scale * (sum of the slot's row losses); loss_scale
  // 0 means 1 / rows (the gradient of the mean). The last stage starts from its loss, the others from `output_grad`
  // (the next stage's input_grad). Afterwards input_grad() [stage_input_size()] holds the gradient for the previous
  // stage (not on the first stage). on_ready is told, as backward walks the buffer from its end, which gradients
  // are complete (ready(0) last).
  virtual void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) = 0;
  virtual const Vec<T>& input_grad() const = 0;
  virtual int slots_allocated() const = 0;
  // Under train.precision = bf16: keep the activations that feed only GEMMs as bf16 until backward (the GEMMs round
  // them to bf16 anyway: identical results, half their memory). Before the first forward; models without such
  // storage ignore it.
  virtual void store_gemm_inputs_bf16(bool /*on*/) {}
  // Bytes of activation storage one slot holds (0 where a model does not count them), and the allocation of slots
  // 0 .. n-1 ahead of the first forward (the memory report measures them before training).
  virtual size_t slot_bytes() const { return 0; }
  virtual void allocate_slots(int /*n*/) {}
  // Label smoothing of the classifiers' cross-entropy (train.label_smoothing; kernels/cross_entropy.hpp): the loss
  // and its gradient from now on. The trainer turns it off while it evaluates (validation reports the plain loss).
  void set_label_smoothing(double smoothing) { label_smoothing_ = T(smoothing); }
  T label_smoothing() const { return label_smoothing_; }
  // Dropout (kernels/dropout.hpp): the rates from now on; masks are drawn only for microbatches whose
  // DropoutContext is on (training), so evaluation and generation never drop.
  void set_dropout(const DropoutRates& rates) { dropout_ = rates; }
  const DropoutRates& dropout() const { return dropout_; }

  // Distillation (kernels/distillation.hpp) from now on: the last stage's loss on microbatches that carry teacher
  // logits mixes in the soft loss. Off while the trainer evaluates (validation reports the plain cross-entropy).
  void set_distillation(const Distillation& d) { distillation_ = d; }
  const Distillation& distillation() const { return distillation_; }

  // Device buffers for one microbatch of this model (tokens or features, and targets).
  MicroBatch<T> allocate_batch() const;

  // A whole model on one rank (one stage): forward with loss on slot 0, returning the mean loss; backward of it.
  T forward(const MicroBatch<T>& batch);
  void backward(T loss_scale = T(0));

 protected:
  // Throws unless `batch` holds inputs_per_sample() inputs per sample on the first stage and, with with_targets,
  // targets_per_sample() targets per sample.
  void check_batch(const MicroBatch<T>& batch, bool with_targets) const;
  // Throws unless params() holds exactly `expected` (names and this rank's shapes, in order): a buffer shared with
  // another model must have been laid out for this one. `what` names the model in the message.
  void check_params(const std::vector<TensorSpec>& expected, const char* what) const;
  // The last stage with distillation on and the microbatch's teacher logits: copies them into `kept` (a slot's,
  // allocated on first use) and turns the rows' hard losses [rows] into distillation losses. Returns whether it did
  // (the slot's backward must then call distill_backward).
  bool distill_forward(Vec<T>& kept, const MicroBatch<T>& batch, const Vec<T>& losses, const Vec<T>& logits, int rows,
                       int classes);
  // Backward of it in place on logits [rows, classes]: the soft gradient, computed before hard_backward(dloss * (1 -
  // alpha)) overwrites the logits with the hard loss's gradient, is added to it.
  void distill_backward(const Vec<T>& logits, const Vec<T>& kept, int rows, int classes, T dloss,
                        const std::function<void(T)>& hard_backward);
  // The same for logits of n values whose soft gradient soft_gradient(into, alpha) computes (the GPT's
  // vocabulary-parallel one).
  void distill_backward(const Vec<T>& logits, size_t n, T dloss, const std::function<void(T)>& hard_backward,
                        const std::function<void(const Vec<T>&, T)>& soft_gradient);

 private:
  Placement placement_;
  int batch_;
  std::shared_ptr<ParamBuffer<T>> params_;
  T label_smoothing_ = T(0);
  DropoutRates dropout_;
  Distillation distillation_;
  Vec<T> distill_scratch_;  // the soft gradient [rows, classes]
};

}  // namespace strata
