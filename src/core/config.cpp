#include "core/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "core/error.hpp"

namespace strata {
namespace {

struct Binding {
  ConfigField field;
  bool is_int32;  // stored in an `int`: values must fit
  using Setter = void (*)(Config&, const ConfigValue&);
  using Getter = ConfigValue (*)(const Config&);
  Setter set;
  Getter get;
};

template <class M>
void assign(M& member, const ConfigValue& v) {
  if constexpr (std::is_same_v<M, int>) {
    member = static_cast<int>(std::get<int64_t>(v));
  } else {
    member = std::get<M>(v);
  }
}

template <class M>
ConfigValue as_value(const M& member) {
  if constexpr (std::is_same_v<M, int>) {
    return ConfigValue(int64_t(member));
  } else {
    return ConfigValue(member);
  }
}

using Kinds = std::initializer_list<const char*>;

// Out of line, so that the table's function is a list of calls: with every entry's strings, vectors and variant
// inlined (and a whole Config{} built for each default) it took a minute to compile, two under ASan.
[[gnu::noinline]] Binding make_binding(const char* key, ConfigValue default_value, const char* doc, Kinds kinds,
                                       bool is_int32, Binding::Setter set, Binding::Getter get) {
  return Binding{ConfigField{key, std::move(default_value), doc, std::vector<std::string>(kinds.begin(), kinds.end())},
                 is_int32, set, get};
}

#define STRATA_KIND_FIELD(section, name, kinds, doc)                      \
  make_binding(                                                           \
      #section "." #name, as_value(defaults.section.name), doc, kinds,    \
      std::is_same_v<decltype(Config{}.section.name), int>,               \
      [](Config& c, const ConfigValue& v) { assign(c.section.name, v); }, \
      [](const Config& c) { return as_value(c.section.name); })
#define STRATA_FIELD(section, name, doc) STRATA_KIND_FIELD(section, name, {}, doc)

const std::vector<Binding>& bindings() {
  static const std::vector<Binding> table = [] {
    const Config defaults{};
    std::vector<Binding> t;
    t.push_back(STRATA_FIELD(model, kind,
                             "the model: gpt (language model on a token dataset), cnn (image classifier) or lstm "
                             "(sequence classifier); each kind has its own fields"));
    t.push_back(STRATA_KIND_FIELD(model, n_layer, (Kinds{"gpt", "lstm"}),
                                  "gpt: transformer blocks; lstm: stacked recurrent layers"));
    t.push_back(STRATA_KIND_FIELD(model, n_head, Kinds{"gpt"}, "attention heads per block (must divide d_model)"));
    t.push_back(STRATA_KIND_FIELD(model, d_model, Kinds{"gpt"}, "width of the residual stream"));
    t.push_back(
        STRATA_KIND_FIELD(model, vocab_size, Kinds{"gpt"}, "number of token ids (>= the dataset's vocab_size)"));
    t.push_back(STRATA_KIND_FIELD(model, seq_len, Kinds{"gpt"},
                                  "context length in tokens (also the size of the position table)"));
    t.push_back(
        STRATA_KIND_FIELD(model, d_head, Kinds{"gpt"},
                          "width of one attention head (the attention is n_head * d_head wide); 0: d_model / n_head "
                          "(strata prune --heads writes models with fewer heads of the same width)"));
    t.push_back(STRATA_KIND_FIELD(model, d_mlp, Kinds{"gpt"}, "hidden units of each block's MLP; 0: 4 * d_model"));
    t.push_back(STRATA_KIND_FIELD(model, channels, Kinds{"cnn"}, "output channels of each conv block, e.g. [16, 32]"));
    t.push_back(STRATA_KIND_FIELD(model, kernel_size, Kinds{"cnn"}, "square convolution kernel size"));
    t.push_back(STRATA_KIND_FIELD(model, conv_stride, Kinds{"cnn"}, "convolution stride"));
    t.push_back(STRATA_KIND_FIELD(model, padding, Kinds{"cnn"}, "zero padding on each side (-1: kernel_size / 2)"));
    t.push_back(STRATA_KIND_FIELD(model, pool, Kinds{"cnn"}, "pooling after each block: max | avg | none"));
    t.push_back(STRATA_KIND_FIELD(model, pool_size, Kinds{"cnn"}, "pooling window and stride"));
    t.push_back(
        STRATA_KIND_FIELD(model, norm, Kinds{"cnn"},
                          "normalization after each convolution: group (GroupNorm: the same for any dp) | none"));
    t.push_back(
        STRATA_KIND_FIELD(model, norm_groups, Kinds{"cnn"},
                          "GroupNorm groups, dividing every channel count (1: LayerNorm over channels and pixels)"));
    t.push_back(STRATA_KIND_FIELD(model, activation, (Kinds{"cnn", "lstm"}),
                                  "relu | gelu (tanh approximation): the cnn blocks' and the hidden layer's"));
    t.push_back(
        STRATA_KIND_FIELD(model, hidden, (Kinds{"cnn", "lstm"}),
                          "units of a hidden layer (with the activation) before the classifier head (0: none)"));
    t.push_back(STRATA_KIND_FIELD(model, cell, Kinds{"lstm"}, "recurrent cell: lstm | gru (PyTorch's equations)"));
    t.push_back(STRATA_KIND_FIELD(model, hidden_size, Kinds{"lstm"}, "recurrent state size of each layer"));
    t.push_back(STRATA_KIND_FIELD(model, input_shape, (Kinds{"cnn", "lstm"}),
                                  "sample shape: cnn [C, H, W], lstm [T, F] ([]: the dataset's)"));
    t.push_back(
        STRATA_KIND_FIELD(model, num_classes, (Kinds{"cnn", "lstm"}), "classes (0: the dataset's num_classes)"));
    t.push_back(
        STRATA_KIND_FIELD(model, labels, Kinds{"lstm"},
                          "sequence (one label per sequence, read at the last step) | step (one per step) | auto "
                          "(the dataset's label shape)"));
    t.push_back(STRATA_FIELD(data, path,
                             "dataset: tokens (gpt; one HDF5 file or a directory), images (cnn) or sequences (lstm) "
                             "(a directory with a manifest; docs/dataset-format.md)"));
    t.push_back(
        STRATA_FIELD(data, shuffle, "shuffle training windows per epoch (false: batch b = windows b*B..b*B+B-1)"));
    t.push_back(STRATA_FIELD(data, seed, "seed of the per-epoch shuffle"));
    t.push_back(
        STRATA_FIELD(data, prefetch, "batches a background thread reads ahead of the step loop (0: read in the loop)"));
    t.push_back(STRATA_FIELD(
        data, normalize,
        "images, sequences: normalize with the manifest's statistics of the train split, where it stores them"));
    t.push_back(
        STRATA_FIELD(data, crop_padding, "images: random crops with this much zero padding, in training batches"));
    t.push_back(STRATA_FIELD(data, flip, "images: random horizontal flips, in training batches"));
    t.push_back(STRATA_FIELD(data, noise_std,
                             "images: additive Gaussian noise of this standard deviation, in training batches"));
    t.push_back(
        STRATA_FIELD(data, cv_folds,
                     "k-fold cross-validation (strata cv): split the train split into this many folds, a pure function "
                     "of (data.seed, k), stratified by label for one-label-per-sample classifiers; 0: off"));
    t.push_back(STRATA_FIELD(
        data, old_path,
        "continual training: the previous task's dataset (fitting the same model); its validation split is "
        "evaluated before and after training and the forgetting reported (<out_dir>/forgetting.json)"));
    t.push_back(
        STRATA_FIELD(data, replay_fraction,
                     "continual training: this fraction of each global batch's rows (the last ones) replays the "
                     "previous task, data.old_path's train split, in its own seeded order; 0: off"));
    t.push_back(
        STRATA_FIELD(data, cv_fold,
                     "with cv_folds: the fold held out for validation (0 .. cv_folds-1); training reads the others and "
                     "the val split is not used"));
    t.push_back(STRATA_FIELD(train, batch_size, "sequences per optimizer step, over all data-parallel ranks"));
    t.push_back(STRATA_FIELD(train, micro_batch_size,
                             "sequences per forward/backward on one rank (gradient accumulation); 0: batch_size / dp"));
    t.push_back(STRATA_FIELD(train, steps, "optimizer steps to run"));
    t.push_back(STRATA_FIELD(train, lr, "peak learning rate"));
    t.push_back(STRATA_FIELD(train, min_lr, "final learning rate of the cosine/linear decay"));
    t.push_back(STRATA_FIELD(train, warmup_steps, "linear warm-up steps from 0 to lr"));
    t.push_back(
        STRATA_FIELD(train, lr_schedule,
                     "after warm-up: constant | cosine | linear (to min_lr at the last step) | step | multistep | "
                     "exponential | cosine_restarts | wsd (warm-up, stable, linear decay over the last "
                     "lr_decay_fraction); formulas in docs/training.md"));
    t.push_back(STRATA_FIELD(train, lr_gamma, "step, multistep: factor at each decay; exponential: factor per step"));
    t.push_back(STRATA_FIELD(train, lr_step_size, "step: steps between decays, counted from the end of warm-up"));
    t.push_back(STRATA_FIELD(train, lr_milestones,
                             "multistep: steps (after warm-up, increasing) at which lr is multiplied by "
                             "lr_gamma"));
    t.push_back(STRATA_FIELD(train, lr_restart_period, "cosine_restarts: steps of the first cosine cycle"));
    t.push_back(
        STRATA_FIELD(train, lr_restart_mult, "cosine_restarts: each cycle is this many times longer than the last"));
    t.push_back(
        STRATA_FIELD(train, lr_decay_fraction, "wsd: fraction of train.steps, at the end, that decays to min_lr"));
    t.push_back(
        STRATA_FIELD(train, early_stop_metric,
                     "validation metric to keep the best weights by (<out_dir>/best.h5) and to stop on: val_loss "
                     "(any model) or, for classifiers, val_accuracy | val_top3 | val_top5 | val_macro_f1 | "
                     "val_weighted_f1; empty: off. Needs eval_every"));
    t.push_back(
        STRATA_FIELD(train, early_stop_patience,
                     "stop after this many evaluations in a row without improvement (0: never stop, keep the best)"));
    t.push_back(STRATA_FIELD(train, early_stop_min_delta, "an improvement must beat the best value by more than this"));
    t.push_back(STRATA_FIELD(
        train, precision,
        "fp32 | bf16: GEMM operands rounded to bfloat16 with fp32 accumulation; fp32 master weights, AdamW "
        "state, norms, softmax and loss"));
    t.push_back(
        STRATA_FIELD(train, bf16_activations,
                     "with precision = bf16: keep the activations that only feed GEMMs (GPT: LayerNorm outputs, qkv, "
                     "attention output, GELU output) as bf16 until backward; the GEMMs round them anyway, so results "
                     "are identical and those buffers take half the memory. false keeps them in fp32"));
    t.push_back(STRATA_FIELD(train, weight_decay, "AdamW decoupled weight decay, applied to 2-D weights only"));
    t.push_back(
        STRATA_FIELD(train, dropout,
                     "drop probability of inverted dropout at every site of the model, in training batches only: gpt "
                     "embedding output, attention probabilities, residual branches; cnn the head's inputs (flattened "
                     "features, hidden layer); lstm each layer's output states and the hidden layer. Masks are drawn "
                     "from (seed, step, sample, element): the same at every layout and after a restart. 0: off"));
    t.push_back(STRATA_FIELD(train, embedding_dropout, "gpt: dropout of the embedding output; -1: train.dropout"));
    t.push_back(
        STRATA_FIELD(train, attention_dropout, "gpt: dropout of the attention probabilities; -1: train.dropout"));
    t.push_back(STRATA_FIELD(train, residual_dropout,
                             "gpt: dropout of the residual branches (attention and MLP outputs); -1: train.dropout"));
    t.push_back(STRATA_FIELD(train, label_smoothing,
                             "classifiers: train against (1 - e) on the label plus e spread over all classes (torch's "
                             "label_smoothing); validation reports the plain cross-entropy. 0: off"));
    t.push_back(
        STRATA_FIELD(train, l1, "L1 penalty l1 * sum|w| added to the loss (its gradient goes through AdamW; 0: off)"));
    t.push_back(STRATA_FIELD(
        train, l2,
        "L2 penalty (l2/2) * sum w^2 added to the loss: unlike weight_decay, its gradient is normalised by "
        "AdamW like the data gradient (0: off)"));
    t.push_back(
        STRATA_FIELD(train, regularize,
                     "tensors l1/l2 apply to: weights (2-D weight matrices and embeddings, as weight_decay; not norms "
                     "or biases) | all"));
    t.push_back(
        STRATA_FIELD(train, init_from,
                     "continual training: start from these weights (a weights file, checkpoint file or checkpoint "
                     "directory of the same model) with a new optimizer state and schedule; ignored when resuming"));
    t.push_back(
        STRATA_FIELD(train, l2_init,
                     "with init_from: pull every tensor toward the starting weights, (l2_init / 2) sum (w - w_init)^2 "
                     "added to the loss (logged as penalty); 0: off"));
    t.push_back(STRATA_FIELD(train, beta1, "AdamW beta1"));
    t.push_back(STRATA_FIELD(train, beta2, "AdamW beta2"));
    t.push_back(STRATA_FIELD(train, eps, "AdamW epsilon"));
    t.push_back(STRATA_FIELD(train, grad_clip, "clip the global gradient norm to this (0: off)"));
    t.push_back(STRATA_FIELD(train, seed, "seed of parameter initialisation and sampling"));
    t.push_back(STRATA_FIELD(
        train, stop_after,
        "pause after this step: evaluate, checkpoint, exit 75 (resume with a later stop_after or none); the "
        "schedule still spans train.steps (successive halving: jobs/sweep.py halving); 0: off"));
    t.push_back(
        STRATA_FIELD(train, max_wall_minutes,
                     "stop cleanly after this many minutes: checkpoint, exit code 75 (resume later); 0: no limit"));
    t.push_back(
        STRATA_FIELD(train, memory_limit_gb,
                     "stop before training when a rank's estimated memory (parameters, gradients, optimizer state, "
                     "the activations its pipeline stage holds) exceeds this many GiB (2^30 bytes); 0: no limit"));
    t.push_back(STRATA_FIELD(train, log_every, "print a step line every N steps (JSON lines get every step)"));
    t.push_back(STRATA_FIELD(
        train, tensorboard,
        "write TensorBoard event files to <out_dir>/tb: training and validation scalars, time, memory, the "
        "resolved config (a resumed run continues them without repeating steps)"));
    t.push_back(STRATA_FIELD(train, eval_every, "validation loss every N steps (0: only at the end)"));
    t.push_back(STRATA_FIELD(train, eval_batches, "validation batches per evaluation (0: the whole split)"));
    t.push_back(STRATA_FIELD(train, out_dir, "directory for metrics.jsonl, config.toml and saved weights"));
    t.push_back(STRATA_FIELD(train, save_weights, "write final weights to this HDF5 file (relative: inside out_dir)"));
    t.push_back(STRATA_FIELD(train, sample_tokens, "generate this many tokens after training (0: none)"));
    t.push_back(STRATA_FIELD(train, sample_temperature, "softmax temperature of the generated sample"));
    t.push_back(STRATA_FIELD(parallel, dp, "data-parallel ranks (-1: the ranks left after tp and pp)"));
    t.push_back(STRATA_FIELD(parallel, tp, "tensor-parallel ranks"));
    t.push_back(STRATA_FIELD(parallel, pp, "pipeline stages"));
    t.push_back(STRATA_FIELD(parallel, zero1, "shard the AdamW state over data-parallel ranks (ZeRO stage 1)"));
    t.push_back(
        STRATA_FIELD(parallel, schedule, "pipeline schedule: 1f1b (at most pp microbatches in flight) or gpipe"));
    t.push_back(STRATA_FIELD(
        parallel, device_comm,
        "what carries device buffers (gradients, activations, tensor-parallel sums): auto (NCCL when the "
        "model is in GPU memory and Strata has NCCL, else MPI; host-staged MPI on GPUs without NCCL), nccl, "
        "mpi (host memory only), staged (MPI through host copies)"));
    t.push_back(STRATA_FIELD(parallel, bucket_mb,
                             "gradient all-reduce bucket size in MiB (launched as backward completes it)"));
    t.push_back(STRATA_FIELD(checkpoint, dir, "checkpoint directory (relative to train.out_dir unless absolute)"));
    t.push_back(STRATA_FIELD(checkpoint, every, "save every this many steps and at the end (0: never)"));
    t.push_back(STRATA_FIELD(checkpoint, keep_last, "keep the newest this many checkpoints"));
    t.push_back(
        STRATA_FIELD(checkpoint, keep_every, "also keep every checkpoint whose step is a multiple of this (0: none)"));
    t.push_back(
        STRATA_FIELD(checkpoint, resume, "none | auto (latest valid checkpoint in dir, else a fresh start) | a file"));
    t.push_back(STRATA_FIELD(checkpoint, async, "write checkpoints in a background thread while training continues"));
    t.push_back(STRATA_FIELD(checkpoint, verify, "check every tensor's checksum before loading a checkpoint"));
    t.push_back(
        STRATA_FIELD(checkpoint, io,
                     "direct (two-phase collective writes with O_DIRECT) | buffered (the same via the page cache) | "
                     "hdf5 (collective H5Dwrite through MPI-IO)"));
    t.push_back(STRATA_FIELD(
        distill, teacher,
        "knowledge distillation: the teacher (a weights file, checkpoint file or checkpoint directory of a "
        "model of any size for the same dataset: same classes or vocabulary); empty: off"));
    t.push_back(
        STRATA_FIELD(distill, temperature, "T: the soft loss compares softmax(teacher / T) and softmax(student / T)"));
    t.push_back(
        STRATA_FIELD(distill, alpha,
                     "weight of the soft loss T^2 KL(teacher || student); the label's cross-entropy gets 1 - alpha"));
    t.push_back(
        STRATA_FIELD(prune, sparsity,
                     "magnitude pruning: the final fraction of the selected tensors' elements set to zero (smallest "
                     "|w| first) and kept at zero by a mask applied after every step; in [0, 1), 0: off"));
    t.push_back(
        STRATA_FIELD(prune, initial_sparsity, "the fraction pruned at start_step; the cubic schedule rises from it"));
    t.push_back(STRATA_FIELD(prune, start_step, "steps done at the first mask update"));
    t.push_back(
        STRATA_FIELD(prune, end_step,
                     "steps done when sparsity is reached: s = sparsity + (initial - sparsity) (1 - (t - start) / (end "
                     "- start))^3 in between; -1: three quarters of train.steps"));
    t.push_back(STRATA_FIELD(prune, every, "steps between mask updates (and at end_step)"));
    t.push_back(STRATA_FIELD(prune, scope,
                             "global (one |w| threshold over all selected tensors) | layer (each tensor pruned to the "
                             "fraction on its own)"));
    t.push_back(
        STRATA_FIELD(prune, tensors,
                     "weights (weight matrices and conv kernels; not embeddings, norms or biases) | all (embeddings "
                     "too)"));
    t.push_back(STRATA_FIELD(
        guard, enabled,
        "skip a step whose loss or gradient norm is not finite (or spikes, guard.spike_z) on every rank, "
        "and roll back after guard.rollback_after of them in a row; false: a non-finite step stops the run"));
    t.push_back(
        STRATA_FIELD(guard, spike_z,
                     "a step spikes when its loss or gradient norm lies this many standard deviations above the mean "
                     "of the last guard.window accepted steps; 0: off"));
    t.push_back(
        STRATA_FIELD(guard, window, "accepted steps the spike z-scores look back on (no spikes until it is full)"));
    t.push_back(
        STRATA_FIELD(guard, rollback_after,
                     "bad steps in a row that roll the run back to its newest checkpoint before them, skipping their "
                     "batches from then on; 0: never roll back (only skip)"));
    t.push_back(STRATA_FIELD(guard, max_rollbacks, "rollbacks a run may make; the next stops it with an error"));
    t.push_back(
        STRATA_FIELD(guard, skip_batches,
                     "global batch indices never trained on (batch i holds the samples at positions i * batch_size .. "
                     "of the sample order; step s reads batch s - 1 when none is skipped)"));
    t.push_back(
        STRATA_FIELD(watchdog, timeout_s,
                     "seconds a rank's step, evaluation or checkpoint save may go without progress before the watchdog "
                     "names the ranks that have not arrived and ends the job with exit code 76 (resumable); 0: off"));
    t.push_back(STRATA_FIELD(
        watchdog, straggler_every,
        "steps between gathers of every rank's compute time per step (also <out_dir>/rank_times.jsonl); 0: "
        "off"));
    t.push_back(STRATA_FIELD(watchdog, straggler_factor,
                             "a rank whose compute time exceeds the median's this many times is named"));
    return t;
  }();
  return table;
}
#undef STRATA_FIELD

const Binding* find_binding(const std::string& key) {
  for (const auto& b : bindings())
    if (b.field.key == key) return &b;
  return nullptr;
}

const char* type_name(const ConfigValue& v) {
  switch (v.index()) {
    case 0: return "an integer";
    case 1: return "a number";
    case 2: return "true or false";
    case 3: return "a string";
    default: return "a list of integers";
  }
}

// Converts a TOML value to the field's type; nullopt-like failure reported by the caller.
bool from_toml(const toml::value& t, const ConfigValue& like, ConfigValue& out) {
  switch (like.index()) {
    case 0:
      if (!t.is_integer()) return false;
      out = int64_t(t.as_integer());
      return true;
    case 1:
      if (t.is_floating())
        out = double(t.as_floating());
      else if (t.is_integer())
        out = double(t.as_integer());
      else
        return false;
      return true;
    case 2:
      if (!t.is_boolean()) return false;
      out = t.as_boolean();
      return true;
    case 3:
      if (!t.is_string()) return false;
      out = std::string(t.as_string());
      return true;
    default: {
      if (!t.is_array()) return false;
      std::vector<int64_t> list;
      for (const auto& e : t.as_array()) {
        if (!e.is_integer()) return false;
        list.push_back(int64_t(e.as_integer()));
      }
      out = list;
      return true;
    }
  }
}

// "16,32", "[16, 32]" or "[]" (--set values of list fields).
bool list_from_text(std::string text, ConfigValue& out) {
  if (!text.empty() && text.front() == '[') {
    if (text.back() != ']') return false;
    text = text.substr(1, text.size() - 2);
  }
  std::vector<int64_t> list;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    const auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b == std::string::npos) return false;
    item = item.substr(b, e - b + 1);
    size_t used = 0;
    list.push_back(std::stoll(item, &used));
    if (used != item.size()) return false;
  }
  out = list;
  return true;
}

bool from_text(const std::string& text, const ConfigValue& like, ConfigValue& out) {
  try {
    size_t used = 0;
    switch (like.index()) {
      case 0: {
        long long v = std::stoll(text, &used);
        if (used != text.size()) return false;
        out = int64_t(v);
        return true;
      }
      case 1: {
        double v = std::stod(text, &used);
        if (used != text.size()) return false;
        out = v;
        return true;
      }
      case 2:
        if (text != "true" && text != "false") return false;
        out = text == "true";
        return true;
      case 3: {
        std::string s = text;
        if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
          s = s.substr(1, s.size() - 2);
        out = s;
        return true;
      }
      default: return list_from_text(text, out);
    }
  } catch (const std::exception&) {
    return false;
  }
}

std::string describe(const toml::value& t) {
  std::string s = toml::format(t);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// toml11 explains a syntax error over several lines (an excerpt with line numbers and hints); errors here are
// one line, so keep its first sentence and the line number it points at.
std::string one_line_toml_error(const std::string& path, const std::string& what) {
  std::istringstream lines(what);
  std::string first, line, number;
  std::getline(lines, first);
  if (first.rfind("[error] ", 0) == 0) first = first.substr(8);
  while (number.empty() && std::getline(lines, line)) {
    const auto bar = line.find(" | ");
    if (bar == std::string::npos) continue;
    const auto digits = line.substr(0, bar);
    const auto start = digits.find_first_not_of(' ');
    if (start != std::string::npos && digits.find_first_not_of("0123456789", start) == std::string::npos)
      number = digits.substr(start);
  }
  return number.empty() ? fmt::format("{}: cannot read config: {}", path, first)
                        : fmt::format("{}:{}: cannot parse config: {}", path, number, first);
}

// Rejects integers that do not fit the field's storage instead of letting them wrap.
bool fits(const Binding& b, const ConfigValue& v) {
  if (!b.is_int32) return true;
  const int64_t i = std::get<int64_t>(v);
  return i >= std::numeric_limits<int>::min() && i <= std::numeric_limits<int>::max();
}

void apply_file(Config& config, const std::string& path) {
  toml::value root;
  try {
    root = toml::parse(path);
  } catch (const std::exception& e) {
    STRATA_FAIL("{}", one_line_toml_error(path, e.what()));
  }
  STRATA_CHECK(root.is_table(), "{}: expected a TOML table at the top level", path);
  for (const auto& [section, table] : root.as_table()) {
    STRATA_CHECK(table.is_table(),
                 "{}: '{}' should be a [section] table (model, data, train, parallel, checkpoint, distill, prune, "
                 "guard, watchdog)",
                 path, section);
    for (const auto& [name, value] : table.as_table()) {
      const std::string key = section + "." + name;
      const Binding* b = find_binding(key);
      STRATA_CHECK(b != nullptr, "{}: unknown key '{}' (run `strata config --doc` for the fields)", path, key);
      ConfigValue v;
      STRATA_CHECK(from_toml(value, b->field.default_value, v), "{}: {}: expected {}, got {}", path, key,
                   type_name(b->field.default_value), describe(value));
      STRATA_CHECK(fits(*b, v), "{}: {} = {}: out of range (expected a 32-bit integer)", path, key, describe(value));
      b->set(config, v);
      config.given.push_back({key, path});
    }
  }
}

void apply_override(Config& config, const std::string& text) {
  const auto eq = text.find('=');
  STRATA_CHECK(eq != std::string::npos && eq > 0, "--set {}: expected section.key=value", text);
  const std::string key = text.substr(0, eq), value = text.substr(eq + 1);
  const Binding* b = find_binding(key);
  STRATA_CHECK(b != nullptr, "--set {}: unknown key '{}' (run `strata config --doc` for the fields)", text, key);
  ConfigValue v;
  STRATA_CHECK(from_text(value, b->field.default_value, v), "--set {}: {}: expected {}, got '{}'", text, key,
               type_name(b->field.default_value), value);
  STRATA_CHECK(fits(*b, v), "--set {}: {}: out of range (expected a 32-bit integer)", text, key);
  b->set(config, v);
  config.given.push_back({key, "--set " + text});
}

// A value as TOML writes it.
std::string toml_text(const ConfigValue& v) {
  if (v.index() == 3) return toml::format(toml::value(std::get<std::string>(v)));
  return format_value(v);
}

}  // namespace

bool ConfigField::applies_to(const std::string& kind) const {
  return kinds.empty() || std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

std::string format_value(const ConfigValue& v) {
  switch (v.index()) {
    case 0: return std::to_string(std::get<int64_t>(v));
    case 1: return fmt::format("{}", std::get<double>(v));
    case 2: return std::get<bool>(v) ? "true" : "false";
    case 3: return std::get<std::string>(v);
    default: {
      std::string out = "[";
      for (auto x : std::get<std::vector<int64_t>>(v)) out += (out.size() > 1 ? ", " : "") + std::to_string(x);
      return out + "]";
    }
  }
}

std::vector<std::pair<std::string, ConfigValue>> model_fields(const ModelConfig& m) {
  Config c;
  c.model = m;
  std::vector<std::pair<std::string, ConfigValue>> out;
  for (const auto& b : bindings())
    if (b.field.key.rfind("model.", 0) == 0 && b.field.applies_to(m.kind))
      out.push_back({b.field.key.substr(6), b.get(c)});
  return out;
}

ModelConfig model_from_fields(const std::vector<std::pair<std::string, ConfigValue>>& fields,
                              const std::string& source) {
  Config c;
  for (const auto& [name, value] : fields)
    if (name == "kind") c.model.kind = std::get<std::string>(value);
  STRATA_CHECK(std::find(model_kinds().begin(), model_kinds().end(), c.model.kind) != model_kinds().end(),
               "{}: model.kind = '{}': expected gpt, cnn or lstm", source, c.model.kind);
  for (const auto& [name, value] : fields) {
    const Binding* b = find_binding("model." + name);
    STRATA_CHECK(b != nullptr, "{}: unknown model field '{}'", source, name);
    STRATA_CHECK(value.index() == b->field.default_value.index(), "{}: model.{} = {}: expected {}", source, name,
                 format_value(value), type_name(b->field.default_value));
    b->set(c, value);
  }
  return c.model;
}

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = [] {
    std::vector<ConfigField> out;
    for (const auto& b : bindings()) out.push_back(b.field);
    return out;
  }();
  return fields;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config config;
  if (!path.empty()) {
    config.source = path;
    apply_file(config, path);
  }
  for (const auto& o : overrides) apply_override(config, o);
  validate_config(config);
  return config;
}

namespace {

bool one_of(const std::string& value, std::initializer_list<const char*> choices) {
  for (const char* c : choices)
    if (value == c) return true;
  return false;
}

// The model kind's own fields; `f` names the file.
void validate_model(const Config& c, const std::string& f) {
  const ModelConfig& m = c.model;
  STRATA_CHECK(one_of(m.kind, {"gpt", "cnn", "lstm"}), "{}: model.kind = '{}': expected gpt, cnn or lstm", f, m.kind);
  // A field of another kind is a mistake (a typo'd kind, a config copied from another model): say which.
  for (const auto& [key, where] : c.given) {
    const Binding* b = find_binding(key);
    if (b && !b->field.applies_to(m.kind))
      STRATA_FAIL("{}: {} is a field of model.kind = {}, not of '{}' (run `strata config --doc`)", where, key,
                  fmt::join(b->field.kinds, " | "), m.kind);
  }
  auto positive = [&](const char* key, int64_t v) { STRATA_CHECK(v > 0, "{}: {} = {}: expected > 0", f, key, v); };
  if (m.kind == "gpt") {
    positive("model.n_layer", m.n_layer);
    positive("model.n_head", m.n_head);
    positive("model.d_model", m.d_model);
    positive("model.seq_len", m.seq_len);
    STRATA_CHECK(m.vocab_size >= 2, "{}: model.vocab_size = {}: expected >= 2", f, m.vocab_size);
    STRATA_CHECK(m.d_head > 0 || m.d_model % m.n_head == 0,
                 "{}: model.d_model = {} must be divisible by model.n_head = {} (head size d_model / n_head; or set "
                 "model.d_head)",
                 f, m.d_model, m.n_head);
    STRATA_CHECK(m.d_head >= 0, "{}: model.d_head = {}: expected >= 0 (0: d_model / n_head)", f, m.d_head);
    STRATA_CHECK(m.d_mlp >= 0, "{}: model.d_mlp = {}: expected >= 0 (0: 4 * d_model)", f, m.d_mlp);
    return;
  }
  STRATA_CHECK(m.num_classes == 0 || m.num_classes >= 2, "{}: model.num_classes = {}: expected >= 2 (0: the dataset's)",
               f, m.num_classes);
  STRATA_CHECK(m.hidden >= 0, "{}: model.hidden = {}: expected >= 0 (0: no hidden layer)", f, m.hidden);
  STRATA_CHECK(one_of(m.activation, {"relu", "gelu"}), "{}: model.activation = '{}': expected relu or gelu", f,
               m.activation);
  const size_t dims = m.kind == "cnn" ? 3 : 2;
  bool shape_ok = m.input_shape.empty() || m.input_shape.size() == dims;
  for (auto d : m.input_shape) shape_ok = shape_ok && d > 0;
  STRATA_CHECK(shape_ok, "{}: model.input_shape = {}: expected {} positive sizes ({}), or [] for the dataset's", f,
               format_value(m.input_shape), dims, m.kind == "cnn" ? "[C, H, W]" : "[T, F]");
  if (m.kind == "cnn") {
    STRATA_CHECK(!m.channels.empty(), "{}: model.channels is empty: expected one entry per conv block", f);
    for (auto ch : m.channels)
      STRATA_CHECK(ch > 0 && ch <= 1 << 20, "{}: model.channels = {}: expected positive channel counts", f,
                   format_value(m.channels));
    positive("model.kernel_size", m.kernel_size);
    positive("model.conv_stride", m.conv_stride);
    positive("model.pool_size", m.pool_size);
    STRATA_CHECK(m.padding >= -1, "{}: model.padding = {}: expected >= 0 (-1: kernel_size / 2)", f, m.padding);
    STRATA_CHECK(one_of(m.pool, {"max", "avg", "none"}), "{}: model.pool = '{}': expected max, avg or none", f, m.pool);
    STRATA_CHECK(one_of(m.norm, {"group", "none"}), "{}: model.norm = '{}': expected group or none", f, m.norm);
    positive("model.norm_groups", m.norm_groups);
    if (m.norm == "group")
      for (auto ch : m.channels)
        STRATA_CHECK(ch % m.norm_groups == 0, "{}: model.norm_groups = {} does not divide model.channels = {}", f,
                     m.norm_groups, format_value(m.channels));
  } else {
    positive("model.n_layer", m.n_layer);
    positive("model.hidden_size", m.hidden_size);
    STRATA_CHECK(one_of(m.cell, {"lstm", "gru"}), "{}: model.cell = '{}': expected lstm or gru", f, m.cell);
    STRATA_CHECK(one_of(m.labels, {"auto", "sequence", "step"}),
                 "{}: model.labels = '{}': expected sequence, step or auto", f, m.labels);
  }
}

// The schedule fields (optim/lr_schedule.hpp has the formulas).
void check_lr_schedule(const TrainConfig& c, const std::string& f) {
  static const std::set<std::string> schedules = {"constant",  "cosine",      "linear",          "step",
                                                  "multistep", "exponential", "cosine_restarts", "wsd"};
  STRATA_CHECK(schedules.count(c.lr_schedule),
               "{}: train.lr_schedule = '{}': expected constant, cosine, linear, step, multistep, exponential, "
               "cosine_restarts or wsd",
               f, c.lr_schedule);
  const std::string& s = c.lr_schedule;
  if (s == "step" || s == "multistep" || s == "exponential")
    STRATA_CHECK(c.lr_gamma > 0 && c.lr_gamma <= 1, "{}: train.lr_gamma = {}: expected in (0, 1] for {}", f, c.lr_gamma,
                 s);
  if (s == "step") STRATA_CHECK(c.lr_step_size >= 1, "{}: train.lr_step_size = {}: expected >= 1", f, c.lr_step_size);
  if (s == "multistep") {
    STRATA_CHECK(!c.lr_milestones.empty(), "{}: train.lr_milestones: expected at least one step for multistep", f);
    for (size_t i = 0; i < c.lr_milestones.size(); ++i) {
      STRATA_CHECK(c.lr_milestones[i] > c.warmup_steps,
                   "{}: train.lr_milestones[{}] = {}: expected after the warm-up (> warmup_steps = {})", f, i,
                   c.lr_milestones[i], c.warmup_steps);
      STRATA_CHECK(i == 0 || c.lr_milestones[i] > c.lr_milestones[i - 1],
                   "{}: train.lr_milestones: expected increasing steps, got {} after {}", f, c.lr_milestones[i],
                   c.lr_milestones[i - 1]);
    }
  }
  if (s == "cosine_restarts") {
    STRATA_CHECK(c.lr_restart_period >= 1, "{}: train.lr_restart_period = {}: expected >= 1", f, c.lr_restart_period);
    STRATA_CHECK(c.lr_restart_mult >= 1, "{}: train.lr_restart_mult = {}: expected >= 1", f, c.lr_restart_mult);
  }
  if (s == "wsd") {
    STRATA_CHECK(c.lr_decay_fraction > 0 && c.lr_decay_fraction <= 1,
                 "{}: train.lr_decay_fraction = {}: expected in (0, 1]", f, c.lr_decay_fraction);
    STRATA_CHECK(c.warmup_steps + c.wsd_decay_steps() <= c.steps,
                 "{}: train.lr_decay_fraction = {}: its {} decay steps and {} warm-up steps exceed train.steps = {}", f,
                 c.lr_decay_fraction, c.wsd_decay_steps(), c.warmup_steps, c.steps);
  }
}

// train.early_stop_*: a metric the model reports, evaluations to watch.
void check_early_stopping(const Config& c, const std::string& f) {
  const TrainConfig& t = c.train;
  STRATA_CHECK(t.early_stop_patience >= 0, "{}: train.early_stop_patience = {}: expected >= 0", f,
               t.early_stop_patience);
  STRATA_CHECK(t.early_stop_min_delta >= 0 && std::isfinite(t.early_stop_min_delta),
               "{}: train.early_stop_min_delta = {}: expected >= 0", f, t.early_stop_min_delta);
  if (t.early_stop_metric.empty()) {
    STRATA_CHECK(t.early_stop_patience == 0, "{}: train.early_stop_patience = {} needs train.early_stop_metric", f,
                 t.early_stop_patience);
    return;
  }
  const bool classifier = c.model.kind != "gpt";
  const std::set<std::string> metrics =
      classifier
          ? std::set<std::string>{"val_loss", "val_accuracy", "val_top3", "val_top5", "val_macro_f1", "val_weighted_f1"}
          : std::set<std::string>{"val_loss"};
  STRATA_CHECK(metrics.count(t.early_stop_metric),
               "{}: train.early_stop_metric = '{}': expected {} for model.kind = {}", f, t.early_stop_metric,
               classifier ? "val_loss, val_accuracy, val_top3, val_top5, val_macro_f1 or val_weighted_f1" : "val_loss",
               c.model.kind);
  STRATA_CHECK(t.eval_every > 0, "{}: train.early_stop_metric = '{}' needs train.eval_every > 0 (evaluations to watch)",
               f, t.early_stop_metric);
}

// prune.*: a fraction in [0, 1), a schedule inside the run.
void check_pruning(const Config& c, const std::string& f) {
  const PruneConfig& p = c.prune;
  STRATA_CHECK(p.sparsity >= 0 && p.sparsity < 1, "{}: prune.sparsity = {}: expected in [0, 1) (0: off)", f,
               p.sparsity);
  STRATA_CHECK(p.initial_sparsity >= 0 && p.initial_sparsity <= p.sparsity,
               "{}: prune.initial_sparsity = {}: expected in [0, prune.sparsity = {}]", f, p.initial_sparsity,
               p.sparsity);
  STRATA_CHECK(p.every >= 1, "{}: prune.every = {}: expected >= 1", f, p.every);
  STRATA_CHECK(p.scope == "global" || p.scope == "layer", "{}: prune.scope = '{}': expected global or layer", f,
               p.scope);
  STRATA_CHECK(p.tensors == "weights" || p.tensors == "all", "{}: prune.tensors = '{}': expected weights or all", f,
               p.tensors);
  STRATA_CHECK(p.start_step >= 0, "{}: prune.start_step = {}: expected >= 0", f, p.start_step);
  STRATA_CHECK(p.end_step >= -1, "{}: prune.end_step = {}: expected >= 0, or -1 for 3/4 of train.steps", f, p.end_step);
  if (!p.on()) return;
  const int64_t end = p.end_for(c.train.steps);
  STRATA_CHECK(end >= p.start_step && end <= c.train.steps,
               "{}: prune.end_step = {}{}: expected prune.start_step = {} .. train.steps = {}", f, end,
               p.end_step < 0 ? " (3/4 of train.steps)" : "", p.start_step, c.train.steps);
}

// guard.*: thresholds and counts that make sense.
void check_guard(const Config& c, const std::string& f) {
  const GuardConfig& g = c.guard;
  STRATA_CHECK(g.spike_z >= 0 && std::isfinite(g.spike_z), "{}: guard.spike_z = {}: expected >= 0 (0: off)", f,
               g.spike_z);
  STRATA_CHECK(g.window >= 2, "{}: guard.window = {}: expected >= 2 steps", f, g.window);
  STRATA_CHECK(g.rollback_after >= 0, "{}: guard.rollback_after = {}: expected >= 0 (0: never)", f, g.rollback_after);
  STRATA_CHECK(g.max_rollbacks >= 0, "{}: guard.max_rollbacks = {}: expected >= 0", f, g.max_rollbacks);
  for (size_t i = 0; i < g.skip_batches.size(); ++i)
    STRATA_CHECK(g.skip_batches[i] >= 0, "{}: guard.skip_batches[{}] = {}: expected a batch index >= 0", f, i,
                 g.skip_batches[i]);
}

// watchdog.*: a timeout and a factor that make sense.
void check_watchdog(const Config& c, const std::string& f) {
  const WatchdogConfig& w = c.watchdog;
  STRATA_CHECK(w.timeout_s >= 0 && std::isfinite(w.timeout_s), "{}: watchdog.timeout_s = {}: expected >= 0 (0: off)", f,
               w.timeout_s);
  STRATA_CHECK(w.straggler_every >= 0, "{}: watchdog.straggler_every = {}: expected >= 0 (0: off)", f,
               w.straggler_every);
  STRATA_CHECK(w.straggler_factor > 1 && std::isfinite(w.straggler_factor),
               "{}: watchdog.straggler_factor = {}: expected > 1", f, w.straggler_factor);
}

}  // namespace

int stage_units(const ModelConfig& m) { return m.kind == "cnn" ? int(m.channels.size()) : m.n_layer; }

void validate_config(const Config& c) {
  const std::string& f = c.source;
  auto positive = [&](const char* key, int64_t v) { STRATA_CHECK(v > 0, "{}: {} = {}: expected > 0", f, key, v); };
  validate_model(c, f);
  positive("train.batch_size", c.train.batch_size);
  positive("train.log_every", c.train.log_every);
  STRATA_CHECK(c.data.crop_padding >= 0, "{}: data.crop_padding = {}: expected >= 0", f, c.data.crop_padding);
  STRATA_CHECK(c.data.noise_std >= 0 && std::isfinite(c.data.noise_std), "{}: data.noise_std = {}: expected >= 0", f,
               c.data.noise_std);
  STRATA_CHECK(c.data.cv_folds == 0 || c.data.cv_folds >= 2, "{}: data.cv_folds = {}: expected 0 (off) or k >= 2 folds",
               f, c.data.cv_folds);
  STRATA_CHECK(c.data.cv_folds == 0 || (c.data.cv_fold >= 0 && c.data.cv_fold < c.data.cv_folds),
               "{}: data.cv_fold = {}: expected 0 .. data.cv_folds - 1 = {}", f, c.data.cv_fold, c.data.cv_folds - 1);
  STRATA_CHECK(c.data.replay_fraction >= 0 && c.data.replay_fraction < 1,
               "{}: data.replay_fraction = {}: expected in [0, 1)", f, c.data.replay_fraction);
  STRATA_CHECK(c.data.replay_fraction == 0 || !c.data.old_path.empty(),
               "{}: data.replay_fraction = {} replays the previous task: it needs data.old_path", f,
               c.data.replay_fraction);
  STRATA_CHECK(c.data.prefetch >= 0 && c.data.prefetch <= 64, "{}: data.prefetch = {}: expected 0..64", f,
               c.data.prefetch);
  STRATA_CHECK(c.train.steps >= 0, "{}: train.steps = {}: expected >= 0", f, c.train.steps);
  STRATA_CHECK(c.train.lr > 0, "{}: train.lr = {}: expected > 0", f, c.train.lr);
  STRATA_CHECK(c.train.min_lr >= 0 && c.train.min_lr <= c.train.lr, "{}: train.min_lr = {}: expected in [0, lr = {}]",
               f, c.train.min_lr, c.train.lr);
  STRATA_CHECK(c.train.warmup_steps >= 0, "{}: train.warmup_steps = {}: expected >= 0", f, c.train.warmup_steps);
  STRATA_CHECK(c.train.precision == "fp32" || c.train.precision == "bf16",
               "{}: train.precision = '{}': expected fp32 or bf16", f, c.train.precision);
  check_lr_schedule(c.train, f);
  check_early_stopping(c, f);
  STRATA_CHECK(c.train.label_smoothing >= 0 && c.train.label_smoothing < 1,
               "{}: train.label_smoothing = {}: expected in [0, 1)", f, c.train.label_smoothing);
  STRATA_CHECK(c.train.label_smoothing == 0 || c.model.kind != "gpt",
               "{}: train.label_smoothing applies to classifiers (model.kind = cnn or lstm), not gpt", f);
  STRATA_CHECK(c.train.dropout >= 0 && c.train.dropout < 1, "{}: train.dropout = {}: expected in [0, 1)", f,
               c.train.dropout);
  for (const auto& [name, value] : {std::pair{"embedding_dropout", c.train.embedding_dropout},
                                    std::pair{"attention_dropout", c.train.attention_dropout},
                                    std::pair{"residual_dropout", c.train.residual_dropout}}) {
    STRATA_CHECK(value == -1 || (value >= 0 && value < 1),
                 "{}: train.{} = {}: expected in [0, 1), or -1 for train.dropout", f, name, value);
    STRATA_CHECK(value == -1 || c.model.kind == "gpt",
                 "{}: train.{} is a gpt dropout site; model.kind = {} drops at train.dropout's sites", f, name,
                 c.model.kind);
  }
  STRATA_CHECK(c.train.l1 >= 0 && std::isfinite(c.train.l1), "{}: train.l1 = {}: expected >= 0", f, c.train.l1);
  STRATA_CHECK(c.train.l2 >= 0 && std::isfinite(c.train.l2), "{}: train.l2 = {}: expected >= 0", f, c.train.l2);
  STRATA_CHECK(c.train.regularize == "weights" || c.train.regularize == "all",
               "{}: train.regularize = '{}': expected weights or all", f, c.train.regularize);
  STRATA_CHECK(c.train.l2_init >= 0 && std::isfinite(c.train.l2_init), "{}: train.l2_init = {}: expected >= 0", f,
               c.train.l2_init);
  STRATA_CHECK(c.train.l2_init == 0 || !c.train.init_from.empty(),
               "{}: train.l2_init = {} pulls toward the starting weights: it needs train.init_from", f,
               c.train.l2_init);
  STRATA_CHECK(c.train.beta1 >= 0 && c.train.beta1 < 1, "{}: train.beta1 = {}: expected in [0, 1)", f, c.train.beta1);
  STRATA_CHECK(c.train.beta2 >= 0 && c.train.beta2 < 1, "{}: train.beta2 = {}: expected in [0, 1)", f, c.train.beta2);
  STRATA_CHECK(c.train.eps > 0, "{}: train.eps = {}: expected > 0", f, c.train.eps);
  STRATA_CHECK(c.train.weight_decay >= 0, "{}: train.weight_decay = {}: expected >= 0", f, c.train.weight_decay);
  STRATA_CHECK(c.train.grad_clip >= 0, "{}: train.grad_clip = {}: expected >= 0 (0: off)", f, c.train.grad_clip);
  STRATA_CHECK(c.train.eval_every >= 0 && c.train.eval_batches >= 0,
               "{}: train.eval_every and train.eval_batches: expected >= 0", f);
  STRATA_CHECK(c.train.sample_tokens >= 0, "{}: train.sample_tokens = {}: expected >= 0", f, c.train.sample_tokens);
  STRATA_CHECK(c.train.sample_tokens == 0 || c.model.kind == "gpt",
               "{}: train.sample_tokens = {}: sampling text applies to model.kind = gpt, not {}", f,
               c.train.sample_tokens, c.model.kind);
  STRATA_CHECK(c.train.sample_temperature > 0, "{}: train.sample_temperature = {}: expected > 0", f,
               c.train.sample_temperature);
  STRATA_CHECK(c.parallel.dp == -1 || c.parallel.dp >= 1, "{}: parallel.dp = {}: expected >= 1, or -1 for the rest", f,
               c.parallel.dp);
  STRATA_CHECK(c.parallel.tp >= 1, "{}: parallel.tp = {}: expected >= 1", f, c.parallel.tp);
  STRATA_CHECK(c.parallel.pp >= 1 && c.parallel.pp <= stage_units(c.model),
               "{}: parallel.pp = {}: expected 1 .. {} = {} (each stage holds at least one {})", f, c.parallel.pp,
               c.model.kind == "cnn" ? "the number of model.channels" : "model.n_layer", stage_units(c.model),
               c.model.kind == "cnn" ? "conv block" : "layer");
  STRATA_CHECK(c.parallel.device_comm == "auto" || c.parallel.device_comm == "nccl" ||
                   c.parallel.device_comm == "mpi" || c.parallel.device_comm == "staged",
               "{}: parallel.device_comm = '{}': expected auto, nccl, mpi or staged", f, c.parallel.device_comm);
  STRATA_CHECK(c.parallel.schedule == "1f1b" || c.parallel.schedule == "gpipe",
               "{}: parallel.schedule = '{}': expected 1f1b or gpipe", f, c.parallel.schedule);
  STRATA_CHECK(c.train.stop_after >= 0, "{}: train.stop_after = {}: expected >= 0", f, c.train.stop_after);
  STRATA_CHECK(c.train.max_wall_minutes >= 0, "{}: train.max_wall_minutes = {}: expected >= 0", f,
               c.train.max_wall_minutes);
  STRATA_CHECK(c.train.memory_limit_gb >= 0 && std::isfinite(c.train.memory_limit_gb),
               "{}: train.memory_limit_gb = {}: expected >= 0 (0: no limit)", f, c.train.memory_limit_gb);
  STRATA_CHECK(c.distill.temperature > 0 && std::isfinite(c.distill.temperature),
               "{}: distill.temperature = {}: expected > 0", f, c.distill.temperature);
  STRATA_CHECK(c.distill.alpha >= 0 && c.distill.alpha <= 1, "{}: distill.alpha = {}: expected in [0, 1]", f,
               c.distill.alpha);
  check_pruning(c, f);
  check_guard(c, f);
  check_watchdog(c, f);
  STRATA_CHECK(c.checkpoint.every >= 0, "{}: checkpoint.every = {}: expected >= 0", f, c.checkpoint.every);
  STRATA_CHECK(c.checkpoint.keep_last >= 1, "{}: checkpoint.keep_last = {}: expected >= 1 (the latest is always kept)",
               f, c.checkpoint.keep_last);
  STRATA_CHECK(c.checkpoint.keep_every >= 0, "{}: checkpoint.keep_every = {}: expected >= 0", f,
               c.checkpoint.keep_every);
  STRATA_CHECK(c.checkpoint.io == "direct" || c.checkpoint.io == "buffered" || c.checkpoint.io == "hdf5",
               "{}: checkpoint.io = '{}': expected direct, buffered or hdf5", f, c.checkpoint.io);
  STRATA_CHECK(!c.checkpoint.resume.empty(), "{}: checkpoint.resume is empty: expected none, auto or a file", f);
  STRATA_CHECK(c.parallel.bucket_mb > 0, "{}: parallel.bucket_mb = {}: expected > 0", f, c.parallel.bucket_mb);
  STRATA_CHECK(c.train.micro_batch_size >= 0, "{}: train.micro_batch_size = {}: expected >= 0 (0: batch_size / dp)", f,
               c.train.micro_batch_size);
}

std::string to_toml(const Config& config) {
  std::string out, section;
  for (const auto& b : bindings()) {
    const auto dot = b.field.key.find('.');
    const std::string s = b.field.key.substr(0, dot), name = b.field.key.substr(dot + 1);
    if (s != section) {
      out += fmt::format("{}[{}]\n", out.empty() ? "" : "\n", s);
      section = s;
    }
    if (!b.field.applies_to(config.model.kind)) continue;  // another model kind's field
    out += fmt::format("{} = {}\n", name, toml_text(b.get(config)));
  }
  return out;
}

}  // namespace strata
