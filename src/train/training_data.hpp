#pragma once
// The dataset as the trainer and evaluation read it, whatever its kind (docs/dataset-format.md): token windows
// for a GPT, images for a CNN, sequences for an LSTM. Opening checks the dataset against the model before any
// work and fills the model fields left to the dataset (input shape, classes, label shape).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "data/array_batches.hpp"
#include "data/batch_sampler.hpp"
#include "data/token_dataset.hpp"
#include "data/window_source.hpp"
#include "nn/model.hpp"

namespace strata {

// This rank's share of one global batch, in host memory.
struct HostBatch {
  std::vector<int32_t> tokens;   // [local, seq_len] (tokens)
  std::vector<float> features;   // [local, sample elements] (images, sequences)
  std::vector<int32_t> targets;  // [local, targets per sample]
  std::vector<int64_t> samples;  // the split's sample of each row (images, sequences)
};

// Copies microbatch m (of `micro` samples) of `batch` into the model's device buffers.
void load_microbatch(const HostBatch& batch, int m, int micro, MicroBatch<float>& out);

// The model config with the fields the dataset decides filled in (cnn/lstm: input_shape, num_classes, labels),
// after checking that the dataset's kind fits model.kind and that the fields given agree with it. Throws naming
// the config file, the field, the dataset and what it holds.
ModelConfig resolve_model(const ModelConfig& model, const std::string& data_path, const std::string& source);

class TrainingData {
 public:
  // Opens the train and val splits of config.data.path for data-parallel rank dp_rank of dp, and checks them
  // (token ids against the vocabulary; array shards, labels and values).
  TrainingData(const Config& config, int dp, int dp_rank);
  ~TrainingData();

  bool tokens() const { return tokens_ != nullptr; }
  int64_t train_samples() const;  // windows or samples of the train split
  std::string describe() const;   // one line for the log
  // Buffers for this rank's share of a global batch.
  HostBatch prototype() const;
  // This rank's share of the global batch starting at global position `consumed` (thread-safe: the prefetcher).
  void read(int64_t consumed, HostBatch& out) const;

  // Tokens: the validation windows, the dataset info (tokenizer, end-of-text id).
  const data::WindowSource& val_windows() const { return *val_tokens_; }
  const data::TokenDatasetInfo& token_info() const { return info_; }
  // Images, sequences: the validation split and whether samples are normalized.
  const data::ArraySplit& val_arrays() const { return *val_arrays_; }
  bool normalized() const { return normalize_; }

 private:
  std::string fold_note(bool held_out) const;  // cross-validation: what describe() adds to a split's name

  const Config& config_;
  int dp_, dp_rank_;
  data::TokenDatasetInfo info_;
  std::unique_ptr<data::WindowSource> tokens_, val_tokens_;
  std::unique_ptr<data::ArraySplit> arrays_, val_arrays_;
  std::unique_ptr<data::BatchSampler> sampler_;
  std::unique_ptr<data::ArrayBatches> batches_;
  bool normalize_ = false;
  // Replay (data.replay_fraction): the last replay_rows_ rows of each global batch come from data.old_path's train
  // split, in its own sample order.
  int replay_rows_ = 0;
  std::unique_ptr<data::WindowSource> old_tokens_;
  std::unique_ptr<data::ArraySplit> old_arrays_;
  std::unique_ptr<data::BatchSampler> old_sampler_;
  std::unique_ptr<data::ArrayBatches> old_batches_;
  void open_replay();
  std::string replay_note() const;  // what describe() adds with replay
  void read_replayed(int64_t consumed, HostBatch& out) const;
};

}  // namespace strata
