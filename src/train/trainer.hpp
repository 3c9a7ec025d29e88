#pragma once
// The training loop on one rank: data -> forward -> backward -> clip -> AdamW, with metrics, periodic
// evaluation, optional weight saving and a generated sample at the end.
#include <mpi.h>

#include <string>

#include "core/config.hpp"

namespace strata {

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, final_loss = 0, val_loss = 0;
  double val_accuracy = -1;  // classifiers: the final validation accuracy (-1: a language model)
  double median_ms = 0;
  double median_data_wait_ms = 0;  // the step loop waiting for its batch (prefetch keeping up: ~0)
  bool stopped_early = false;      // a signal or the time budget: checkpoint written, steps remain
  std::string stop_reason;
  // Early stopping (train.early_stop_metric): the run ended for want of improvement (complete, not resumable), and
  // the best evaluation (step 0: none).
  bool early_stopped = false;
  int64_t best_step = 0;
  double best_metric = 0;
  std::string checkpoint_dir;
  double sparsity = -1;                      // pruning: the pruned tensors' final sparsity (-1: off)
  double peak_rss_bytes = 0;                 // the largest rank's peak host resident set
  double peak_device_bytes = -1;             // the largest rank's peak GPU memory in use (-1: a host build)
  int64_t skipped_steps = 0, rollbacks = 0;  // the step guard's (train/step_guard.hpp)
};

// Validates the layout against `world` and the dataset against the config before any work (filling in the model
// fields the dataset decides), then trains.
// Throws strata::Error.
TrainSummary train(const Config& config, MPI_Comm world);

}  // namespace strata
