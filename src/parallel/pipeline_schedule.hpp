#pragma once
// Pipeline-parallel schedules (DESIGN.md principle 7) over one step's microbatches on this stage.
//   GPipe: every microbatch forward, then every microbatch backward; holds all M microbatches' activations.
//   1F1B:  (pp - stage - 1) warm-up forwards, then one forward / one backward alternately, then the remaining
//          backwards; holds at most pp - stage microbatches' activations (<= pp).
// Backwards run in microbatch order in both, so the gradients accumulate in the order one rank would.
// Activations go forward and their gradients backward with non-blocking sends and blocking receives.
#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "nn/gpt.hpp"

namespace strata {

enum class PipelineSchedule { GPipe, OneFOneB };
PipelineSchedule parse_schedule(const std::string& name, const std::string& source);  // "gpipe" | "1f1b"

template <class T>
class PipelineRunner {
 public:
  // Fills microbatch m's tokens and targets (host or device views of batch * seq_len).
  using Loader = std::function<void(int m, const Vec<int32_t>& tokens, const Vec<int32_t>& targets)>;

  PipelineRunner(Gpt<T>& model, Communicator& pp, PipelineSchedule schedule);

  // Forward and backward of n_micro microbatches; the last microbatch's backward reports to on_ready.
  // Returns, on the last stage, the sum over microbatches of (mean loss x sequences); 0 on the others.
  double run(int n_micro, const Loader& load, T loss_scale, const typename Gpt<T>::GradReadyHook& on_ready);

  int peak_slots() const { return peak_slots_; }  // most microbatches' activations held at once
  double comm_ms() const { return comm_ms_; }     // blocked receiving or finishing sends in the last run

 private:
  void forward(int m);
  void backward(int m, bool last);
  int acquire();

  Gpt<T>& model_;
  Communicator& pp_;
  PipelineSchedule schedule_;
  const Loader* load_ = nullptr;
  T loss_scale_ = 0;
  const typename Gpt<T>::GradReadyHook* on_ready_ = nullptr;
  double loss_sum_ = 0;
  std::vector<int> slot_of_;   // microbatch -> activation slot
  std::vector<bool> slot_busy_;
  int in_use_ = 0, peak_slots_ = 0;
  double comm_ms_ = 0;
  Vec<int32_t> tokens_, targets_;
  Vec<T> recv_activation_, recv_gradient_, send_gradient_;
  std::vector<Request> sends_;
  Request gradient_send_;
};

}  // namespace strata
