#pragma once
// Stopping a run early and cleanly (Slurm preemption, time limits): SIGUSR1 or SIGTERM, or the time budget
// train.max_wall_minutes, sets a request that the trainer checks at step boundaries; the ranks agree on it (one
// all-reduce), write a checkpoint and exit with kExitResumable so that a batch script knows to requeue.
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace strata {

// `strata train` exits with this code when it stopped early with a checkpoint written and more steps to go
// (EX_TEMPFAIL in sysexits.h: "try again later"). 0 means training is complete.
inline constexpr int kExitResumable = 75;

class StopRequest {
 public:
  // Installs the SIGUSR1 and SIGTERM handlers (kept until the process exits: a signal after the last step is
  // ignored); max_wall_minutes <= 0: no budget.
  explicit StopRequest(double max_wall_minutes);
  ~StopRequest();
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // Collective over `world`: true on every rank when any rank got a signal or ran past the budget.
  bool agreed(MPI_Comm world);
  // Why the run stops ("SIGUSR1", "SIGTERM", "the time budget of 30 min"), valid after agreed() returned true.
  const std::string& reason() const { return reason_; }

 private:
  double budget_s_;
  std::chrono::steady_clock::time_point start_;
  std::string reason_;
};

}  // namespace strata
