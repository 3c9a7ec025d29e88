#pragma once
// One TOML config (DESIGN.md principle 12): every field has a type, a default and a line of doc
// (config_fields() lists them; `strata config --doc` prints them), any field can be overridden with
// `--set section.key=value`, and the resolved config is printed at start and stored with results.
#include <cstdint>
#include <string>
#include <variant>
#include <utility>
#include <vector>

namespace strata {

struct ModelConfig {
  int n_layer = 6, n_head = 6, d_model = 384, vocab_size = 257, seq_len = 256;
};

// The model's fields as (name, value), in declaration order: stored in weights files, checkpoints and exports
// and compared on load.
std::vector<std::pair<const char*, int>> model_fields(const ModelConfig& model);

struct DataConfig {
  std::string path;
  bool shuffle = true;
  int64_t seed = 1234;
  int prefetch = 2;  // batches a background thread reads ahead (0: read in the step loop)
};

struct TrainConfig {
  int batch_size = 8;      // global: all data-parallel ranks and microbatches together
  int micro_batch_size = 0;  // sequences per forward/backward on one rank; 0: batch_size / dp
  int64_t steps = 100;
  double lr = 3e-4, min_lr = 3e-5;
  int64_t warmup_steps = 10;
  std::string lr_schedule = "cosine";
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, grad_clip = 1.0;
  int64_t seed = 42;
  int64_t log_every = 1, eval_every = 0, eval_batches = 8;
  std::string out_dir = "runs/default";
  std::string save_weights;
  double max_wall_minutes = 0;  // stop cleanly (checkpoint, exit 75) after this long; 0: no limit
  int64_t sample_tokens = 0;
  double sample_temperature = 0.8;
};

struct ParallelConfig {
  int dp = 1, tp = 1, pp = 1;  // dp = -1: the world size / (tp * pp)
  bool zero1 = false;
  double bucket_mb = 16;
  std::string schedule = "1f1b";  // pipeline schedule: 1f1b | gpipe
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

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;
  std::string source = "<defaults>";  // the file it came from, for error messages
};

using ConfigValue = std::variant<int64_t, double, bool, std::string>;

struct ConfigField {
  std::string key;  // "section.name"
  ConfigValue default_value;
  std::string doc;
};

const std::vector<ConfigField>& config_fields();

// Reads `path` (empty: defaults only), applies `overrides` ("a.b=value"), validates.
// Throws strata::Error naming the file, the field and what was expected.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Checks the relations between fields (d_model divisible by n_head, ...).
void validate_config(const Config& config);

// The resolved config as TOML text.
std::string to_toml(const Config& config);

}  // namespace strata
