#include "train/training_data.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "data/folds.hpp"
#include "data/manifest.hpp"
#include "data/open_tokens.hpp"
#include "data/window_subset.hpp"

namespace strata {

void load_microbatch(const HostBatch& batch, int m, int micro, MicroBatch<float>& out) {
  auto copy = [&](const auto& from, const auto& to) {
    using E = typename std::decay_t<decltype(from)>::value_type;
    const size_t n = to.extent(0), first = size_t(m) * n;
    STRATA_CHECK(first + n <= from.size(), "microbatch {} of {}: {} values, the batch holds {}", m, micro, n,
                 from.size());
    Kokkos::deep_copy(to, HostVec<E>(const_cast<E*>(from.data()) + first, n));
  };
  if (out.tokens.extent(0) > 0) copy(batch.tokens, out.tokens);
  if (out.features.extent(0) > 0) copy(batch.features, out.features);
  copy(batch.targets, out.targets);
}

ModelConfig resolve_model(const ModelConfig& model, const std::string& path, const std::string& source) {
  STRATA_CHECK(!path.empty(), "{}: data.path is empty: expected a dataset", source);
  ModelConfig m = model;
  const bool directory = std::filesystem::is_directory(path);
  const std::string kind = directory && std::filesystem::exists(std::filesystem::path(path) / data::kManifestName)
                               ? data::read_manifest(path).kind
                               : "tokens";
  const char* wanted = m.kind == "gpt" ? "tokens" : m.kind == "cnn" ? "images" : "sequences";
  STRATA_CHECK(kind == wanted, "{}: model.kind = {} trains on a dataset of kind {}, but data.path = '{}' holds {}",
               source, m.kind, wanted, path, kind);
  if (m.kind == "gpt") return m;
  const data::DatasetManifest d = data::read_manifest(path);
  auto agree = [&](const char* field, const std::string& given, const std::string& stored) {
    STRATA_CHECK(given == stored, "{}: model.{} = {}, but the dataset '{}' holds {}", source, field, given, path,
                 stored);
  };
  if (m.input_shape.empty()) m.input_shape = d.sample_shape;
  agree("input_shape", format_value(m.input_shape), format_value(d.sample_shape));
  if (m.num_classes == 0) m.num_classes = int(d.num_classes);
  agree("num_classes", std::to_string(m.num_classes), std::to_string(d.num_classes));
  if (m.kind == "lstm") {
    const std::string labels = d.label_shape.empty() ? "sequence" : "step";
    if (m.labels == "auto") m.labels = labels;
    STRATA_CHECK(m.labels == labels, "{}: model.labels = {}, but the dataset '{}' holds {}", source, m.labels, path,
                 labels == "step" ? "one label per step (label shape [T])" : "one label per sequence");
  }
  return m;
}

TrainingData::TrainingData(const Config& config, int dp, int dp_rank) : config_(config), dp_(dp), dp_rank_(dp_rank) {
  const auto& mc = config.model;
  const auto& dc = config.data;
  const int batch = config.train.batch_size;
  if (mc.kind == "gpt") {
    info_ = data::inspect_tokens(dc.path);
    tokens_ = data::open_token_split(dc.path, "train", mc.seq_len, mc.vocab_size);
    if (dc.cv_folds > 0) {
      // Cross-validation: the held-out fold of the train split validates; the other folds train.
      const auto folds = data::assign_folds(tokens_->num_windows(), dc.cv_folds, uint64_t(dc.seed));
      val_tokens_ =
          std::make_unique<data::WindowSubset>(data::open_token_split(dc.path, "train", mc.seq_len, mc.vocab_size),
                                               data::fold_members(folds, dc.cv_fold, true), fold_note(true));
      tokens_ = std::make_unique<data::WindowSubset>(std::move(tokens_), data::fold_members(folds, dc.cv_fold, false),
                                                     fold_note(false));
    } else {
      val_tokens_ = data::open_token_split(dc.path, "val", mc.seq_len, mc.vocab_size);
    }
    tokens_->check_all_token_ids();
    val_tokens_->check_all_token_ids();
    sampler_ = std::make_unique<data::BatchSampler>(tokens_->num_windows(), batch, dc.shuffle, uint64_t(dc.seed));
    open_replay();
    return;
  }
  arrays_ = std::make_unique<data::ArraySplit>(dc.path, "train", /*verify=*/true);
  if (dc.cv_folds > 0) {
    // Cross-validation: the held-out fold of the train split validates (stratified by label where each sample has
    // one); the other folds train.
    const auto labels = arrays_->label_elems() == 1 ? arrays_->all_labels() : std::vector<int32_t>{};
    const auto folds = data::assign_folds(arrays_->num_samples(), dc.cv_folds, uint64_t(dc.seed), labels);
    val_arrays_ = std::make_unique<data::ArraySplit>(dc.path, "train", /*verify=*/false);
    val_arrays_->select(data::fold_members(folds, dc.cv_fold, true), fold_note(true));
    arrays_->select(data::fold_members(folds, dc.cv_fold, false), fold_note(false));
  } else {
    val_arrays_ = std::make_unique<data::ArraySplit>(dc.path, "val", /*verify=*/true);
  }
  const auto& m = arrays_->manifest();
  normalize_ = dc.normalize && !m.mean.empty();
  data::AugmentOptions augment;
  augment.crop_padding = dc.crop_padding;
  augment.flip = dc.flip;
  augment.noise_std = float(dc.noise_std);
  augment.seed = uint64_t(dc.seed);
  STRATA_CHECK(!augment.any() || m.kind == "images",
               "{}: data.crop_padding, data.flip and data.noise_std augment images; '{}' holds {}", config.source,
               dc.path, m.kind);
  sampler_ = std::make_unique<data::BatchSampler>(arrays_->num_samples(), batch, dc.shuffle, uint64_t(dc.seed));
  batches_ = std::make_unique<data::ArrayBatches>(*arrays_, *sampler_, batch, dp, dp_rank, normalize_, augment);
  open_replay();
}

void TrainingData::open_replay() {
  const auto& dc = config_.data;
  const int batch = config_.train.batch_size;
  if (dc.replay_fraction <= 0) return;
  replay_rows_ = int(std::llround(dc.replay_fraction * batch));
  STRATA_CHECK(replay_rows_ >= 1 && replay_rows_ < batch,
               "{}: data.replay_fraction = {} of train.batch_size = {} is {} rows: expected 1 .. {}", config_.source,
               dc.replay_fraction, batch, replay_rows_, batch - 1);
  const auto& mc = config_.model;
  if (tokens_) {
    old_tokens_ = data::open_token_split(dc.old_path, "train", mc.seq_len, mc.vocab_size);
    old_tokens_->check_all_token_ids();
    old_sampler_ = std::make_unique<data::BatchSampler>(old_tokens_->num_windows(), replay_rows_, dc.shuffle,
                                                        uint64_t(dc.seed) + 1);
    return;
  }
  resolve_model(mc, dc.old_path, config_.source + ": data.old_path");  // the model fits the previous task
  old_arrays_ = std::make_unique<data::ArraySplit>(dc.old_path, "train", /*verify=*/true);
  old_sampler_ =
      std::make_unique<data::BatchSampler>(old_arrays_->num_samples(), replay_rows_, dc.shuffle, uint64_t(dc.seed) + 1);
  data::AugmentOptions augment;
  augment.crop_padding = dc.crop_padding;
  augment.flip = dc.flip;
  augment.noise_std = float(dc.noise_std);
  augment.seed = uint64_t(dc.seed) + 1;
  const bool normalize = dc.normalize && !old_arrays_->manifest().mean.empty();
  old_batches_ =
      std::make_unique<data::ArrayBatches>(*old_arrays_, *old_sampler_, replay_rows_, 1, 0, normalize, augment);
}

// Row r of global batch g: new-task rows 0 .. N-1 (N = B - R) take positions g N + r of the new order, the replayed
// rows N .. B-1 positions g R + (r - N) of the old one; this rank reads its rows dp_rank * local ...
void TrainingData::read_replayed(int64_t consumed, HostBatch& out) const {
  const int B = config_.train.batch_size, R = replay_rows_, N = B - R, local = B / dp_;
  const int64_t g = consumed / B;
  std::vector<int64_t> fresh, replayed;  // positions
  std::vector<int> fresh_rows, replayed_rows;
  for (int j = 0; j < local; ++j) {
    const int r = dp_rank_ * local + j;
    if (r < N) {
      fresh.push_back(g * N + r);
      fresh_rows.push_back(j);
    } else {
      replayed.push_back(g * R + (r - N));
      replayed_rows.push_back(j);
    }
  }
  if (tokens_) {
    const size_t T = size_t(config_.model.seq_len);
    for (size_t k = 0; k < fresh.size(); ++k)
      tokens_->read_window(sampler_->sample_at(fresh[k]), out.tokens.data() + size_t(fresh_rows[k]) * T,
                           out.targets.data() + size_t(fresh_rows[k]) * T);
    for (size_t k = 0; k < replayed.size(); ++k)
      old_tokens_->read_window(old_sampler_->sample_at(replayed[k]), out.tokens.data() + size_t(replayed_rows[k]) * T,
                               out.targets.data() + size_t(replayed_rows[k]) * T);
    return;
  }
  const size_t se = size_t(arrays_->sample_elems()), le = size_t(arrays_->label_elems());
  auto fill = [&](const data::ArrayBatches& from, const std::vector<int64_t>& positions, const std::vector<int>& rows) {
    if (positions.empty()) return;
    std::vector<float> x(positions.size() * se);
    std::vector<int32_t> y(positions.size() * le);
    std::vector<int64_t> samples(positions.size());
    from.fill_positions(positions, x.data(), y.data(), samples.data());
    for (size_t k = 0; k < rows.size(); ++k) {
      const size_t j = size_t(rows[k]);
      std::copy_n(x.data() + k * se, se, out.features.data() + j * se);
      std::copy_n(y.data() + k * le, le, out.targets.data() + j * le);
      out.samples[j] = samples[k];
    }
  };
  fill(*batches_, fresh, fresh_rows);
  fill(*old_batches_, replayed, replayed_rows);
}

TrainingData::~TrainingData() = default;

std::string TrainingData::fold_note(bool held_out) const {
  const auto& dc = config_.data;
  return held_out ? fmt::format(" (cross-validation fold {} of {}, held out)", dc.cv_fold, dc.cv_folds)
                  : fmt::format(" (cross-validation: without fold {} of {})", dc.cv_fold, dc.cv_folds);
}

int64_t TrainingData::train_samples() const { return tokens_ ? tokens_->num_windows() : arrays_->num_samples(); }

std::string TrainingData::replay_note() const {
  return replay_rows_ > 0 ? fmt::format("; replaying {} of {} rows per batch from {}'s train split", replay_rows_,
                                        config_.train.batch_size, config_.data.old_path)
                          : "";
}

std::string TrainingData::describe() const {
  if (tokens_)
    return (config_.data.cv_folds > 0
                ? fmt::format("dataset {}: {} train tokens; cross-validation fold {} of {}: {} windows train, {} held "
                              "out for validation; vocab {} ({})",
                              config_.data.path, info_.train_tokens, config_.data.cv_fold, config_.data.cv_folds,
                              tokens_->num_windows(), val_tokens_->num_windows(), info_.vocab_size, info_.tokenizer)
                : fmt::format("dataset {}: {} train tokens ({} windows), {} val tokens, vocab {} ({})",
                              config_.data.path, info_.train_tokens, tokens_->num_windows(), info_.val_tokens,
                              info_.vocab_size, info_.tokenizer)) +
           replay_note();
  const auto& m = arrays_->manifest();
  return fmt::format("dataset {}: {} of shape {}, {} classes, labels {}; {} train / {} val samples{}{}",
                     config_.data.path, m.kind, format_value(m.sample_shape), m.num_classes,
                     m.label_shape.empty() ? "per sample" : "per step", arrays_->num_samples(),
                     val_arrays_->num_samples(), normalize_ ? ", normalized" : "",
                     config_.data.cv_folds > 0 ? fmt::format(" (cross-validation fold {} of {} held out)",
                                                             config_.data.cv_fold, config_.data.cv_folds)
                                               : "") +
         replay_note();
}

HostBatch TrainingData::prototype() const {
  const size_t local = size_t(config_.train.batch_size / dp_);
  HostBatch b;
  if (tokens_) {
    const size_t n = local * size_t(config_.model.seq_len);
    b.tokens.resize(n);
    b.targets.resize(n);
    return b;
  }
  b.features.resize(local * size_t(arrays_->sample_elems()));
  b.targets.resize(local * size_t(arrays_->label_elems()));
  b.samples.resize(local);
  return b;
}

void TrainingData::read(int64_t consumed, HostBatch& out) const {
  if (replay_rows_ > 0) return read_replayed(consumed, out);
  if (tokens_) {
    tokens_->read_windows(sampler_->rank_batch(consumed, config_.train.batch_size, dp_, dp_rank_), out.tokens.data(),
                          out.targets.data());
    return;
  }
  batches_->fill_at(consumed, out.features.data(), out.targets.data(), out.samples.data());
}

}  // namespace strata
