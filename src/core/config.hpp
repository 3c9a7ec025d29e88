#pragma once
// One TOML config (DESIGN.md principle 12): every field has a type, a default and a line of doc
// (config_fields() lists them; `strata config --doc` prints them), any field can be overridden with
// `--set section.key=value`, and the resolved config is printed at start and stored with results.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace strata {

// The model: `kind` and that kind's fields (config_fields() says which field belongs to which kind).
struct ModelConfig {
  std::string kind = "gpt";  // gpt | cnn | lstm
  // gpt (n_layer also lstm)
  int n_layer = 6, n_head = 6, d_model = 384, vocab_size = 257, seq_len = 256;
  int d_head = 0;  // gpt: width of one attention head; 0: d_model / n_head
  int d_mlp = 0;   // gpt: hidden units of the MLP; 0: 4 d_model
  // cnn: conv blocks (conv -> norm -> activation -> pool), then flatten, an optional hidden layer and the head
  std::vector<int64_t> channels{16, 32};               // output channels of each conv block
  int kernel_size = 3, conv_stride = 1, padding = -1;  // padding -1: kernel_size / 2
  std::string pool = "max";                            // max | avg | none
  int pool_size = 2;
  std::string norm = "group";       // group | none
  int norm_groups = 4;              // GroupNorm groups (1: LayerNorm over the channel's planes)
  std::string activation = "relu";  // relu | gelu: cnn blocks and the hidden layer (cnn, lstm)
  int hidden = 0;                   // units of a hidden layer before the head (0: none)
  // lstm
  std::string cell = "lstm";  // lstm | gru
  int hidden_size = 64;
  // classifiers (cnn, lstm): taken from the dataset's manifest where left at their defaults
  std::vector<int64_t> input_shape;  // images [C, H, W], sequences [T, F]
  int num_classes = 0;
  std::string labels = "auto";  // lstm: sequence (one label per sequence) | step (one per step) | auto
};

using ConfigValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>>;

// The model's fields as (name, value): `kind` first, then that kind's fields in declaration order. Stored in
// weights files, checkpoints and exports, and compared on load.
std::vector<std::pair<std::string, ConfigValue>> model_fields(const ModelConfig& model);
// The model fields' values as text ("16" or "[16, 32]" or "max").
std::string format_value(const ConfigValue& value);
// The inverse of model_fields: kind first, then its fields (absent ones keep their defaults). Throws naming
// `source` when a value has the wrong type or the kind is unknown.
ModelConfig model_from_fields(const std::vector<std::pair<std::string, ConfigValue>>& fields,
                              const std::string& source);

struct DataConfig {
  std::string path;
  bool shuffle = true;
  int64_t seed = 1234;
  int prefetch = 2;  // batches a background thread reads ahead (0: read in the step loop)
  // images and sequences
  bool normalize = true;  // apply the manifest's per-channel / per-feature statistics where it stores them
  int crop_padding = 0;   // images: random crop with this much zero padding (training batches only)
  bool flip = false;      // images: random horizontal flips (training batches only)
  double noise_std = 0;   // images: additive Gaussian noise (training batches only)
  // k-fold cross-validation (data/folds.hpp, `strata cv`): with cv_folds = k >= 2, train on the train split without
  // fold cv_fold and validate on that fold (the val split is not read); 0: off.
  int cv_folds = 0;
  int cv_fold = 0;
  // Continual training: the previous task's dataset (same model fields); its validation split is evaluated before
  // and after training (forgetting, <out_dir>/forgetting.json).
  std::string old_path;
  double replay_fraction = 0;  // this fraction of each global batch's rows comes from old_path's train split
};

struct TrainConfig {
  int batch_size = 8;        // global: all data-parallel ranks and microbatches together
  int micro_batch_size = 0;  // sequences per forward/backward on one rank; 0: batch_size / dp
  int64_t steps = 100;
  double lr = 3e-4, min_lr = 3e-5;
  int64_t warmup_steps = 10;
  std::string lr_schedule = "cosine";  // optim/lr_schedule.hpp lists the schedules and their fields
  double lr_gamma = 0.1;               // step, multistep: factor per decay; exponential: factor per step
  int64_t lr_step_size = 1000;         // step: steps between decays (counted from the end of warm-up)
  std::vector<int64_t> lr_milestones;  // multistep: the steps at which the rate is multiplied by lr_gamma
  int64_t lr_restart_period = 1000;    // cosine_restarts: steps of the first cycle
  int64_t lr_restart_mult = 1;         // cosine_restarts: each cycle this many times longer than the last
  double lr_decay_fraction = 0.2;      // wsd: the last fraction of the steps decays linearly to min_lr
  // wsd: steps in the decay phase.
  int64_t wsd_decay_steps() const {
    return std::max<int64_t>(1, int64_t(std::llround(lr_decay_fraction * double(steps))));
  }
  std::string early_stop_metric;    // "" (off) | val_loss | val_accuracy | val_top3 | val_top5 | val_*_f1
  int64_t early_stop_patience = 0;  // evaluations without improvement before stopping; 0: only keep the best
  double early_stop_min_delta = 0;  // an improvement must beat the best by more than this
  std::string precision = "fp32";   // fp32 | bf16 (GEMM operands in bf16, fp32 accumulation and master weights)
  bool bf16_activations = true;     // with bf16: GEMM-only activations kept as bf16 until backward
  double dropout = 0;               // drop probability at every dropout site of the model (models/model_factory.hpp)
  double embedding_dropout = -1;    // gpt, per site; -1: train.dropout
  double attention_dropout = -1;
  double residual_dropout = -1;
  double label_smoothing = 0;          // classifiers: cross-entropy against (1 - e) one-hot + e / classes
  double l1 = 0, l2 = 0;               // penalties added to the loss: l1 sum|w| + (l2/2) sum w^2
  std::string regularize = "weights";  // which tensors l1/l2 apply to: weights (2-D, as weight decay) | all
  // Continual training: start from these weights (weights file or checkpoint) with a new optimizer state and schedule;
  // l2_init pulls every tensor toward them: (l2_init / 2) sum (w - w_init)^2.
  std::string init_from;
  double l2_init = 0;
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 1.0;
  int64_t seed = 42;
  int64_t log_every = 1, eval_every = 0, eval_batches = 8;
  bool tensorboard = true;  // TensorBoard event files in <out_dir>/tb (train/tensorboard_log.hpp)
  std::string out_dir = "runs/default";
  std::string save_weights;
  double max_wall_minutes = 0;  // stop cleanly (checkpoint, exit 75) after this long; 0: no limit
  double memory_limit_gb = 0;   // refuse a layout whose estimated memory per rank exceeds this many GiB; 0: none
  int64_t stop_after = 0;       // pause after this step (evaluate, checkpoint, exit 75) keeping the schedule of steps
  int64_t sample_tokens = 0;
  double sample_temperature = 0.8;
};

struct ParallelConfig {
  int dp = 1, tp = 1, pp = 1;  // dp = -1: the world size / (tp * pp)
  bool zero1 = false;
  double bucket_mb = 16;
  std::string schedule = "1f1b";     // pipeline schedule: 1f1b | gpipe
  std::string device_comm = "auto";  // device buffers: auto | nccl | mpi | staged
};

struct CheckpointConfig {
  std::string dir = "checkpoints";  // relative to train.out_dir unless absolute
  int64_t every = 0;                // save every this many steps, and at the end (0: no checkpoints)
  int64_t keep_last = 3;            // keep the newest this many
  int64_t keep_every = 0;           // also keep every checkpoint whose step is a multiple of this (0: none)
  std::string resume = "none";      // none | auto (latest valid in dir, or a fresh start) | a checkpoint file
  bool async = false;               // write in a background thread while training continues
  bool verify = true;               // check every tensor's checksum before loading
  std::string io = "direct";        // direct | buffered | hdf5: how tensor bytes are written (ckpt/checkpoint.hpp)
};

// Knowledge distillation (kernels/distillation.hpp, docs/training.md): the student (this run's model) learns from a
// trained teacher's logits on the same batches as well as from the labels.
struct DistillConfig {
  std::string teacher;       // weights file, checkpoint file or checkpoint directory; "" (off)
  double temperature = 2.0;  // T: both softmaxes of the soft loss at logits / T
  double alpha = 0.5;        // weight of the soft loss T^2 KL(teacher || student); the hard loss gets 1 - alpha
};

// Magnitude pruning (train/pruning.hpp, docs/training.md): the smallest weights by |w| are set to zero on a gradual
// schedule and kept at zero by a mask applied after every step; the masks are stored in checkpoints.
struct PruneConfig {
  double sparsity = 0;              // the final fraction of the selected tensors' elements at zero; 0: off
  double initial_sparsity = 0;      // the fraction at start_step
  int64_t start_step = 0;           // steps done at the first mask update
  int64_t end_step = -1;            // steps done when sparsity is reached; -1: three quarters of train.steps
  int64_t every = 10;               // steps between mask updates
  std::string scope = "global";     // global (one threshold over every selected tensor) | layer (each tensor alone)
  std::string tensors = "weights";  // weights (matrices, conv kernels; not embeddings) | all (embeddings too)
  bool on() const { return sparsity > 0; }
  // end_step resolved against the run's train.steps.
  int64_t end_for(int64_t steps) const { return end_step >= 0 ? end_step : steps * 3 / 4; }
};

// The NaN/Inf and spike guard (train/step_guard.hpp, docs/monitoring.md): a step whose loss or gradient norm is not
// finite, or spikes, is skipped on every rank; bad steps in a row roll the run back to its last good checkpoint.
struct GuardConfig {
  bool enabled = true;         // skip non-finite and spiking steps; false: a non-finite step stops the run
  double spike_z = 0;          // z-score of the loss or gradient norm over the window above which a step spikes; 0: off
  int64_t window = 100;        // accepted steps the z-scores look back on (spikes count only once it is full)
  int64_t rollback_after = 3;  // this many bad steps in a row roll back to the last checkpoint before them; 0: never
  int64_t max_rollbacks = 3;   // rollbacks a run may make; one more stops it with an error
  std::vector<int64_t> skip_batches;  // global batch indices never trained on (batch i: samples i*batch_size ...)
};

// The hang watchdog and stragglers (train/watchdog.hpp, train/straggler_report.hpp, docs/monitoring.md).
struct WatchdogConfig {
  double timeout_s = 600;         // a rank whose step, evaluation or save makes no progress this long: a hang; 0: off
  int64_t straggler_every = 100;  // steps between gathers of every rank's compute time per step; 0: off
  double straggler_factor = 1.5;  // a rank this many times slower than the median is named
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  DistillConfig distill;
  PruneConfig prune;
  GuardConfig guard;
  WatchdogConfig watchdog;
  std::string source = "<defaults>";  // the file it came from, for error messages
  // The keys the file and --set gave, in order, each with where it came from (checked against model.kind).
  std::vector<std::pair<std::string, std::string>> given;
};

struct ConfigField {
  std::string key;  // "section.name"
  ConfigValue default_value;
  std::string doc;
  std::vector<std::string> kinds;  // model fields: the model kinds it belongs to (empty: every kind)
  bool applies_to(const std::string& kind) const;
};

inline const std::vector<std::string>& model_kinds() {
  static const std::vector<std::string> kinds{"gpt", "cnn", "lstm"};
  return kinds;
}

const std::vector<ConfigField>& config_fields();

// Reads `path` (empty: defaults only), applies `overrides` ("a.b=value"), validates.
// Throws strata::Error naming the file, the field and what was expected.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Layers a pipeline can split the model into: conv blocks (cnn), transformer blocks or recurrent layers.
int stage_units(const ModelConfig& model);

// Checks the relations between fields (d_model divisible by n_head, ...).
void validate_config(const Config& config);

// The resolved config as TOML text.
std::string to_toml(const Config& config);

}  // namespace strata
