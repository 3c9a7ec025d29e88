#pragma once
// The trainer's side of checkpoints (ckpt/): where they go, when they are written (synchronously, or copied to host
// buffers and written by a background thread), and which one a run resumes from.
#include <mpi.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/checkpoint.hpp"
#include "comm/process_grid.hpp"
#include "core/config.hpp"
#include "nn/param_buffer.hpp"
#include "optim/adamw.hpp"
#include "train/early_stopping.hpp"
#include "train/step_guard.hpp"

namespace strata {

class Checkpointer {
 public:
  // Collective over grid.world() (duplicates it for the background writer). `tensors`: every tensor of the model
  // at its global shape, in file order (the model's spec list at one rank); params holds this rank's part.
  Checkpointer(const Config& config, ProcessGrid& grid, ParamBuffer<float>& params, AdamW<float>& adam,
               std::vector<TensorSpec> tensors);
  ~Checkpointer();  // completes a save still in flight
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  struct Resumed {
    int64_t step = 0, consumed_samples = 0;
    std::string path;  // empty: a fresh start
    EarlyStopState early_stop;
    std::string guard_state;  // the step guard's (train/step_guard.hpp; empty: the checkpoint has none)
  };
  // Collective. checkpoint.resume = none: a fresh start; auto: the latest checkpoint that verifies (damaged ones are
  // reported and skipped), or a fresh start when there is none; a file: that checkpoint, which must verify.
  // Loads parameters, AdamW moments and step counter into this rank's buffers.
  Resumed resume();
  // Collective. The step guard's rollback: loads the newest checkpoint at or before `at_most_step` that verifies
  // (throws when there is none) and sets the newer ones aside (renamed *.rolled-back, out of every resume's reach).
  Resumed roll_back(int64_t at_most_step);

  // Collective. Saves after `step` steps (consumed_samples so far) when step is a multiple of checkpoint.every or
  // `final` is set (and checkpoints are on).
  void maybe_save(int64_t step, int64_t consumed_samples, double lr, bool final);
  // Collective. Saves after `step` steps now (a stop request), unless that step is saved already (again = true:
  // even then, replacing the file: a rolled-back state with the guard's new state).
  void save_now(int64_t step, int64_t consumed_samples, double lr, bool again = false);
  // Pruning: the saves store these tensors' masks (`mask` laid out like the parameters) and resume() loads the
  // masks a checkpoint stores into it (leaving the rest of it as it is).
  void set_pruning(Vec<float> mask, std::vector<std::string> masked);
  // The early-stopping state the next saves record.
  void set_early_stop(const EarlyStopState& state) { early_stop_ = state; }
  // The step guard whose state the saves record (null: none).
  void set_guard(const StepGuard* guard) { guard_ = guard; }
  // Completes the save in flight, if any; rethrows its error.
  void wait();

  const std::string& dir() const { return dir_; }
  double blocked_ms_total() const { return blocked_ms_total_; }  // the step loop held up by saves
  int saves() const { return saves_; }

 private:
  ckpt::RankTensors rank_tensors(float* params, float* m, float* v, float* mask) const;
  void save(int64_t step, int64_t consumed_samples, double lr);
  // Loads the first of `candidates` that exists and verifies; automatic: damaged ones are reported and skipped
  // (otherwise the first must be good). An empty path when none is. verb: how the log line says it ("resumed from").
  Resumed load_first_valid(const std::vector<std::string>& candidates, bool automatic, const char* verb);

  const Config& config_;
  ProcessGrid& grid_;
  ParamBuffer<float>& params_;
  AdamW<float>& adam_;
  std::vector<TensorSpec> tensors_;
  std::string dir_;
  bool lead_;
  MPI_Comm writer_comm_ = MPI_COMM_NULL;  // the background writer's own communicator
  std::thread writer_;
  std::exception_ptr writer_error_;
  std::vector<float> snapshot_params_, snapshot_m_, snapshot_v_, snapshot_mask_;
  Vec<float> mask_;  // pruning (empty: none)
  std::vector<std::string> masked_;
  double blocked_ms_total_ = 0;
  int saves_ = 0;
  int64_t last_saved_step_ = -1;
  EarlyStopState early_stop_;
  const StepGuard* guard_ = nullptr;
};

}  // namespace strata
