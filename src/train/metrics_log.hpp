#pragma once
// Step metrics: one human line on stdout (every log_every steps) and one JSON object per line in
// <out_dir>/metrics.jsonl (every step), flushed so a crashed run keeps what it logged.
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "train/metrics.hpp"
#include "train/tensorboard_log.hpp"

namespace strata {

struct StepMetrics {
  int64_t step = 0;  // 1-based
  double loss = 0, lr = 0, grad_norm = 0;
  double throughput = 0;  // tokens/s (language models) or samples/s (classifiers)
  double ms = 0;
  double comm_ms = 0;       // within ms: blocked on communication (dp gradients, tp sums, pipeline receives)
  double data_wait_ms = 0;  // within ms: the step loop waiting for its batch (0 when the prefetch kept up)
  double penalty = -1;      // the L1/L2 penalty added to the loss (train.l1, train.l2); < 0: not regularized
  std::string skipped;      // the step guard skipped the update: why (empty: applied)
  double device_mib = -1;   // GPU memory in use after the step (rank 0's); < 0: a host build
};

enum class Throughput { Tokens, Samples };  // "tokens_per_s" / "tok/s" or "samples_per_s" / "samples/s"

class MetricsLog {
 public:
  // resume_step >= 0: a resumed run continues the file of the run it resumes; its lines up to that step stay,
  // later ones (written after the checkpoint, before the interruption) are dropped. -1: a new file.
  // tb_dir: also TensorBoard event files there (train/tensorboard_log.hpp; empty: none), continued the same way.
  MetricsLog(const std::string& jsonl_path, int64_t total_steps, int64_t print_every, int64_t resume_step = -1,
             Throughput unit = Throughput::Tokens, const std::string& tb_dir = "");
  // The resolved config, as TensorBoard text at `step` (the run's first step).
  void config_text(const std::string& toml, int64_t step);
  void step(const StepMetrics& m);
  // Validation of a language model: {"step", "val_loss", "val_tokens"}.
  void eval(int64_t step, double val_loss, int64_t tokens);
  // Validation of a classifier: {"step", "val_loss", "val_accuracy", "val_top3"/"val_top5" (where the classes
  // allow), "val_macro_f1", "val_weighted_f1", "val_rows"}.
  void eval(int64_t step, const ClassificationMetrics& m);

 private:
  std::ofstream out_;
  std::string path_;
  int64_t total_steps_, print_every_;
  Throughput unit_;
  std::unique_ptr<TensorBoardLog> tb_;
  // This run's first step and its wall-clock start: elapsed time and the ETA of the step lines.
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point first_start_;
};

}  // namespace strata
