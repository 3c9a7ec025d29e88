#pragma once
// Pipeline-parallel schedules (DESIGN.md principle 7) over one step's microbatches on this stage.
//   GPipe: every microbatch forward, then every microbatch backward; holds all M microbatches' activations.
//   1F1B:  (pp - stage - 1) warm-up forwards, then one forward / one backward alternately, then the remaining
//          backwards; holds at most pp - stage microbatches' activations (<= pp).
// Backwards run in microbatch order in both, so the gradients accumulate in the order one rank would.
// Activations go forward and their gradients backward with non-blocking sends and blocking receives. The runner is
// the only place where stages exchange activations: training, evaluation and sampling all go through it. It works
// for any Model (nn/model.hpp): the model says how large its stage input and output are.
#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "nn/model.hpp"

namespace strata {

enum class PipelineSchedule { GPipe, OneFOneB };
PipelineSchedule parse_schedule(const std::string& name, const std::string& source);  // "gpipe" | "1f1b"

template <class T>
class PipelineRunner {
 public:
  // Fills microbatch m (its views are allocated for the model's batch: tokens or features, and targets). Called on
  // every stage; the first reads the inputs, the last the targets.
  using Loader = std::function<void(int m, MicroBatch<T>& batch)>;
  // Forward only: called on the last stage after microbatch m's forward, while slot `slot` holds its logits.
  using OutputHook = std::function<void(int m, int slot)>;

  // pp: the pipeline group (this rank is stage pp.rank() of pp.size(), as the model was placed), for the
  // activations and their gradients (device buffers); pp_host: the same ranks for host values (group()), pp itself
  // when null.
  PipelineRunner(Model<T>& model, Communicator& pp, PipelineSchedule schedule, Communicator* pp_host = nullptr);

  // Forward and backward of n_micro microbatches; the last microbatch's backward reports to on_ready.
  // Returns, on the last stage, the sum over microbatches of (mean loss x samples); 0 on the others.
  double run(int n_micro, const Loader& load, T loss_scale, const GradReadyHook& on_ready);

  // Forward only (evaluation, sampling) of n_micro microbatches, one at a time through the stages. with_loss: the
  // last stage computes the loss and the result is as run()'s; else only logits (targets are not read).
  double forward_only(int n_micro, const Loader& load, bool with_loss, const OutputHook& on_output = {});

  Communicator& group() { return pp_host_; }      // host values (losses, metrics, sampled logits) over the stages
  int peak_slots() const { return peak_slots_; }  // most microbatches' activations held at once
  double comm_ms() const { return comm_ms_; }     // blocked receiving or finishing sends in the last run

 private:
  void forward(int m);
  void backward(int m, bool last);
  int acquire();

  Model<T>& model_;
  Communicator& pp_;
  Communicator& pp_host_;
  PipelineSchedule schedule_;
  const Loader* load_ = nullptr;
  T loss_scale_ = 0;
  const GradReadyHook* on_ready_ = nullptr;
  double loss_sum_ = 0;
  std::vector<int> slot_of_;  // microbatch -> activation slot
  std::vector<bool> slot_busy_;
  int in_use_ = 0, peak_slots_ = 0;
  double comm_ms_ = 0;
  MicroBatch<T> batch_;
  Vec<T> recv_activation_, recv_gradient_, send_gradient_;
  std::vector<Request> sends_;
  Request gradient_send_;
};

}  // namespace strata
