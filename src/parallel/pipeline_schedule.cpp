#include "parallel/pipeline_schedule.hpp"

#include <algorithm>
#include <chrono>

#include "core/error.hpp"

namespace strata {
namespace {
constexpr int kActivation = 21, kGradient = 22;

// Runs f and adds its duration to ms.
template <class F>
void timed(double& ms, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

PipelineSchedule parse_schedule(const std::string& name, const std::string& source) {
  if (name == "gpipe") return PipelineSchedule::GPipe;
  if (name == "1f1b") return PipelineSchedule::OneFOneB;
  STRATA_FAIL("{}: parallel.schedule = '{}': expected gpipe or 1f1b", source, name);
}

template <class T>
PipelineRunner<T>::PipelineRunner(Gpt<T>& model, Communicator& pp, PipelineSchedule schedule)
    : model_(model), pp_(pp), schedule_(schedule) {
  const size_t N = size_t(model.batch()) * model.config().seq_len, C = model.config().d_model;
  tokens_ = Vec<int32_t>("strata::pipeline::tokens", N);
  targets_ = Vec<int32_t>("strata::pipeline::targets", N);
  recv_activation_ = Vec<T>("strata::pipeline::recv_activation", N * C);
  recv_gradient_ = Vec<T>("strata::pipeline::recv_gradient", N * C);
  send_gradient_ = Vec<T>("strata::pipeline::send_gradient", N * C);
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
  const auto& layout = model_.layout();
  const size_t n = recv_activation_.extent(0);
  (*load_)(m, tokens_, targets_);
  if (!layout.first_stage())
    timed(comm_ms_, [&] { pp_.recv(recv_activation_.data(), n, layout.stage - 1, kActivation); });
  const int slot = acquire();
  slot_of_[size_t(m)] = slot;
  peak_slots_ = std::max(peak_slots_, ++in_use_);
  model_.forward_stage(slot, tokens_, targets_, layout.first_stage() ? nullptr : &recv_activation_);
  if (layout.last_stage()) {
    loss_sum_ += double(model_.stage_loss(slot)) * model_.batch();
  } else {
    Kokkos::fence();  // the slot's output stays untouched until its backward: safe to send from
    sends_.push_back(pp_.isend(model_.stage_output(slot).data(), n, layout.stage + 1, kActivation));
  }
}

template <class T>
void PipelineRunner<T>::backward(int m, bool last) {
  const auto& layout = model_.layout();
  const size_t n = recv_gradient_.extent(0);
  if (!layout.last_stage())
    timed(comm_ms_, [&] { pp_.recv(recv_gradient_.data(), n, layout.stage + 1, kGradient); });
  const int slot = slot_of_[size_t(m)];
  model_.backward_stage(slot, loss_scale_, layout.last_stage() ? nullptr : &recv_gradient_,
                        last ? *on_ready_ : typename Gpt<T>::GradReadyHook{});
  slot_busy_[size_t(slot)] = false;
  --in_use_;
  if (!layout.first_stage()) {
    timed(comm_ms_, [&] { pp_.wait(gradient_send_); });  // the previous gradient has left the send buffer
    Kokkos::deep_copy(send_gradient_, model_.input_grad());
    Kokkos::fence();
    gradient_send_ = pp_.isend(send_gradient_.data(), n, layout.stage - 1, kGradient);
  }
}

template <class T>
double PipelineRunner<T>::run(int n_micro, const Loader& load, T loss_scale,
                              const typename Gpt<T>::GradReadyHook& on_ready) {
  load_ = &load;
  loss_scale_ = loss_scale;
  on_ready_ = &on_ready;
  loss_sum_ = 0;
  comm_ms_ = 0;
  slot_of_.assign(size_t(n_micro), -1);
  const auto& layout = model_.layout();
  if (schedule_ == PipelineSchedule::GPipe) {
    for (int m = 0; m < n_micro; ++m) forward(m);
    for (int m = 0; m < n_micro; ++m) backward(m, m + 1 == n_micro);
  } else {
    const int warmup = std::min(n_micro, layout.stages - layout.stage - 1);
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

template class PipelineRunner<float>;
template class PipelineRunner<double>;

}  // namespace strata
