#include "train/stop_request.hpp"

#include <fmt/format.h>

#include <atomic>
#include <csignal>

#include "core/error.hpp"

namespace strata {
namespace {
// The last stop signal received, 0: none. A lock-free atomic, not a volatile sig_atomic_t: the handler may run on any
// thread of the process (Open MPI's and PMIx's threads receive signals too) while the main thread reads it, which
// ThreadSanitizer reported as a data race; a lock-free atomic is safe in a handler and across threads.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be lock-free to be set in a handler");
void on_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }
}  // namespace

StopRequest::StopRequest(double max_wall_minutes)
    : budget_s_(max_wall_minutes * 60.0), start_(std::chrono::steady_clock::now()) {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a signal must not make an MPI or file call fail with EINTR
  STRATA_CHECK(sigaction(SIGUSR1, &sa, nullptr) == 0 && sigaction(SIGTERM, &sa, nullptr) == 0,
               "cannot install the SIGUSR1/SIGTERM handlers");
}

// The handlers stay installed until the process exits: a stop signal that arrives after the last step (while the
// run evaluates, saves and exits; Slurm's --signal=B:USR1@120 can land there) is recorded and ignored, and the
// completed run exits 0, instead of the default action killing it and the batch script reporting a failure.
StopRequest::~StopRequest() = default;

bool StopRequest::agreed(MPI_Comm world) {
  // 2: a signal, 1: the time budget, 0: carry on. The max over ranks decides, so every rank stops at the same step.
  const int sig = g_signal.load(std::memory_order_relaxed);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int mine[2] = {sig != 0 ? 2 : (budget_s_ > 0 && elapsed >= budget_s_ ? 1 : 0), sig}, all[2] = {0, 0};
  STRATA_MPI(MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, world));
  if (all[0] == 0) return false;
  if (all[0] == 2)
    reason_ = all[1] == SIGUSR1 ? "SIGUSR1" : all[1] == SIGTERM ? "SIGTERM" : fmt::format("signal {}", all[1]);
  else
    reason_ = fmt::format("the time budget train.max_wall_minutes = {}", budget_s_ / 60.0);
  return true;
}

}  // namespace strata
