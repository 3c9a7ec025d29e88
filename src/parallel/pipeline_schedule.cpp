#include "parallel/pipeline_schedule.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/stopwatch.hpp"

namespace strata {
namespace {
constexpr int kActivation = 21, kGradient = 22;

// Runs f and adds its duration to ms.
template <class F>
void timed(double& ms, F&& f) {
  const auto start = Clock::now();
  f();
  ms += ms_since(start);
}
}  // namespace

PipelineSchedule parse_schedule(const std::string& name, const std::string& source) {
  if (name == "gpipe") return PipelineSchedule::GPipe;
  if (name == "1f1b") return PipelineSchedule::OneFOneB;
  STRATA_FAIL("{}: parallel.schedule = '{}': expected gpipe or 1f1b", source, name);
}

template <class T>
PipelineRunner<T>::PipelineRunner(Model<T>& model, Communicator& pp, PipelineSchedule schedule, Communicator* pp_host)
    : model_(model), pp_(pp), pp_host_(pp_host ? *pp_host : pp), schedule_(schedule), batch_(model.allocate_batch()) {
  const Placement& p = model.placement();
  STRATA_CHECK(pp.size() == p.stages && pp.rank() == p.stage,
               "pipeline: rank {} of a pipeline group of {} runs stage {} of {}", pp.rank(), pp.size(), p.stage,
               p.stages);
  recv_activation_ = Vec<T>("strata::pipeline::recv_activation", model.stage_input_size());
  recv_gradient_ = Vec<T>("strata::pipeline::recv_gradient", model.stage_output_size());
  send_gradient_ = Vec<T>("strata::pipeline::send_gradient", model.stage_input_size());
}

template <class T>
int PipelineRunner<T>::acquire() {
  for (size_t i = 0; i < slot_busy_.size(); ++i)
    if (!slot_busy_[i]) {
      slot_busy_[i] = true;
      return int(i);
    }
  slot_busy_.push_back(true);
  return int(slot_busy_.size() - 1);
}

template <class T>
void PipelineRunner<T>::forward(int m) {
  const Placement& p = model_.placement();
  (*load_)(m, batch_);
  if (!p.first_stage())
    timed(comm_ms_, [&] { pp_.recv(recv_activation_.data(), recv_activation_.extent(0), p.stage - 1, kActivation); });
  const int slot = acquire();
  slot_of_[size_t(m)] = slot;
  peak_slots_ = std::max(peak_slots_, ++in_use_);
  model_.forward_stage(slot, batch_, p.first_stage() ? nullptr : &recv_activation_, true);
  if (p.last_stage()) {
    loss_sum_ += double(model_.stage_loss(slot)) * model_.batch();
  } else {
    Kokkos::fence();  // the slot's output stays untouched until its backward: safe to send from
    const Vec<T>& out = model_.stage_output(slot);
    sends_.push_back(pp_.isend(out.data(), out.extent(0), p.stage + 1, kActivation));
  }
}

template <class T>
void PipelineRunner<T>::backward(int m, bool last) {
  const Placement& p = model_.placement();
  if (!p.last_stage())
    timed(comm_ms_, [&] { pp_.recv(recv_gradient_.data(), recv_gradient_.extent(0), p.stage + 1, kGradient); });
  const int slot = slot_of_[size_t(m)];
  model_.backward_stage(slot, loss_scale_, p.last_stage() ? nullptr : &recv_gradient_,
                        last ? *on_ready_ : GradReadyHook{});
  slot_busy_[size_t(slot)] = false;
  --in_use_;
  if (!p.first_stage()) {
    timed(comm_ms_, [&] { pp_.wait(gradient_send_); });  // the previous gradient has left the send buffer
    Kokkos::deep_copy(send_gradient_, model_.input_grad());
    Kokkos::fence();
    gradient_send_ = pp_.isend(send_gradient_.data(), send_gradient_.extent(0), p.stage - 1, kGradient);
  }
}

template <class T>
double PipelineRunner<T>::run(int n_micro, const Loader& load, T loss_scale, const GradReadyHook& on_ready) {
  load_ = &load;
  loss_scale_ = loss_scale;
  on_ready_ = &on_ready;
  loss_sum_ = 0;
  comm_ms_ = 0;
  slot_of_.assign(size_t(n_micro), -1);
  const Placement& p = model_.placement();
  if (schedule_ == PipelineSchedule::GPipe) {
    for (int m = 0; m < n_micro; ++m) forward(m);
    for (int m = 0; m < n_micro; ++m) backward(m, m + 1 == n_micro);
  } else {
    const int warmup = std::min(n_micro, p.stages - p.stage - 1);
    int next_forward = 0, next_backward = 0;
    for (; next_forward < warmup; ++next_forward) forward(next_forward);
    while (next_forward < n_micro) {
      forward(next_forward++);
      backward(next_backward, next_backward + 1 == n_micro);
      ++next_backward;
    }
    for (; next_backward < n_micro; ++next_backward) backward(next_backward, next_backward + 1 == n_micro);
  }
  timed(comm_ms_, [&] {
    pp_.wait_all(sends_);
    pp_.wait(gradient_send_);
  });
  sends_.clear();
  return loss_sum_;
}

template <class T>
double PipelineRunner<T>::forward_only(int n_micro, const Loader& load, bool with_loss, const OutputHook& on_output) {
  const Placement& p = model_.placement();
  double loss_sum = 0;
  // Slot 0 for every microbatch: nothing is kept for a backward. The blocking send returns once the next stage
  // has the activation, so the slot can take the next microbatch.
  for (int m = 0; m < n_micro; ++m) {
    load(m, batch_);
    batch_.dropout.on = false;         // evaluation and sampling never drop
    batch_.teacher_logits = Vec<T>();  // nor distil
    if (!p.first_stage())
      timed(comm_ms_, [&] { pp_.recv(recv_activation_.data(), recv_activation_.extent(0), p.stage - 1, kActivation); });
    model_.forward_stage(0, batch_, p.first_stage() ? nullptr : &recv_activation_, with_loss);
    if (p.last_stage()) {
      if (with_loss) loss_sum += double(model_.stage_loss(0)) * model_.batch();
      if (on_output) on_output(m, 0);
    } else {
      Kokkos::fence();
      const Vec<T>& out = model_.stage_output(0);
      timed(comm_ms_, [&] { pp_.send(out.data(), out.extent(0), p.stage + 1, kActivation); });
    }
  }
  return loss_sum;
}

template class PipelineRunner<float>;
template class PipelineRunner<double>;

}  // namespace strata
