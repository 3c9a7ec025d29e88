#include "core/config.hpp"

#include <fmt/format.h>

#include <functional>
#include <limits>
#include <sstream>
#include <map>
#include <set>
#include <toml.hpp>

#include "core/error.hpp"

namespace strata {
namespace {

struct Binding {
  ConfigField field;
  bool is_int32;  // stored in an `int`: values must fit
  std::function<void(Config&, const ConfigValue&)> set;
  std::function<ConfigValue(const Config&)> get;
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

#define STRATA_FIELD(section, name, doc)                                                             \
  Binding {                                                                                          \
    ConfigField{#section "." #name, as_value(Config{}.section.name), doc},                           \
        std::is_same_v<decltype(Config{}.section.name), int>,                                        \
        [](Config& c, const ConfigValue& v) { assign(c.section.name, v); },                          \
        [](const Config& c) { return as_value(c.section.name); }                                     \
  }

const std::vector<Binding>& bindings() {
  static const std::vector<Binding> table = {
      STRATA_FIELD(model, n_layer, "number of transformer blocks"),
      STRATA_FIELD(model, n_head, "attention heads per block (must divide d_model)"),
      STRATA_FIELD(model, d_model, "width of the residual stream"),
      STRATA_FIELD(model, vocab_size, "number of token ids (>= the dataset's vocab_size)"),
      STRATA_FIELD(model, seq_len, "context length in tokens (also the size of the position table)"),
      STRATA_FIELD(data, path, "token dataset: one HDF5 file or a sharded dataset directory (docs/dataset-format.md)"),
      STRATA_FIELD(data, shuffle, "shuffle training windows per epoch (false: batch b = windows b*B..b*B+B-1)"),
      STRATA_FIELD(data, seed, "seed of the per-epoch shuffle"),
      STRATA_FIELD(data, prefetch, "batches a background thread reads ahead of the step loop (0: read in the loop)"),
      STRATA_FIELD(train, batch_size, "sequences per optimizer step, over all data-parallel ranks"),
      STRATA_FIELD(train, micro_batch_size,
                   "sequences per forward/backward on one rank (gradient accumulation); 0: batch_size / dp"),
      STRATA_FIELD(train, steps, "optimizer steps to run"),
      STRATA_FIELD(train, lr, "peak learning rate"),
      STRATA_FIELD(train, min_lr, "final learning rate of the cosine/linear decay"),
      STRATA_FIELD(train, warmup_steps, "linear warm-up steps from 0 to lr"),
      STRATA_FIELD(train, lr_schedule, "constant | cosine | linear (decay after warm-up to min_lr at the last step)"),
      STRATA_FIELD(train, weight_decay, "AdamW decoupled weight decay, applied to 2-D weights only"),
      STRATA_FIELD(train, beta1, "AdamW beta1"),
      STRATA_FIELD(train, beta2, "AdamW beta2"),
      STRATA_FIELD(train, eps, "AdamW epsilon"),
      STRATA_FIELD(train, grad_clip, "clip the global gradient norm to this (0: off)"),
      STRATA_FIELD(train, seed, "seed of parameter initialisation and sampling"),
      STRATA_FIELD(train, max_wall_minutes,
                   "stop cleanly after this many minutes: checkpoint, exit code 75 (resume later); 0: no limit"),
      STRATA_FIELD(train, log_every, "print a step line every N steps (JSON lines get every step)"),
      STRATA_FIELD(train, eval_every, "validation loss every N steps (0: only at the end)"),
      STRATA_FIELD(train, eval_batches, "validation batches per evaluation (0: the whole split)"),
      STRATA_FIELD(train, out_dir, "directory for metrics.jsonl, config.toml and saved weights"),
      STRATA_FIELD(train, save_weights, "write final weights to this HDF5 file (relative: inside out_dir)"),
      STRATA_FIELD(train, sample_tokens, "generate this many tokens after training (0: none)"),
      STRATA_FIELD(train, sample_temperature, "softmax temperature of the generated sample"),
      STRATA_FIELD(parallel, dp, "data-parallel ranks (-1: the ranks left after tp and pp)"),
      STRATA_FIELD(parallel, tp, "tensor-parallel ranks"),
      STRATA_FIELD(parallel, pp, "pipeline stages"),
      STRATA_FIELD(parallel, zero1, "shard the AdamW state over data-parallel ranks (ZeRO stage 1)"),
      STRATA_FIELD(parallel, schedule, "pipeline schedule: 1f1b (at most pp microbatches in flight) or gpipe"),
      STRATA_FIELD(parallel, bucket_mb, "gradient all-reduce bucket size in MiB (launched as backward completes it)"),
      STRATA_FIELD(checkpoint, dir, "checkpoint directory (relative to train.out_dir unless absolute)"),
      STRATA_FIELD(checkpoint, every, "save every this many steps and at the end (0: never)"),
      STRATA_FIELD(checkpoint, keep_last, "keep the newest this many checkpoints"),
      STRATA_FIELD(checkpoint, keep_every, "also keep every checkpoint whose step is a multiple of this (0: none)"),
      STRATA_FIELD(checkpoint, resume, "none | auto (latest valid checkpoint in dir, else a fresh start) | a file"),
      STRATA_FIELD(checkpoint, async, "write checkpoints in a background thread while training continues"),
      STRATA_FIELD(checkpoint, verify, "check every tensor's checksum before loading a checkpoint"),
      STRATA_FIELD(checkpoint, io,
                   "direct (two-phase collective writes with O_DIRECT) | buffered (the same via the page cache) | "
                   "hdf5 (collective H5Dwrite through MPI-IO)"),
  };
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
    default: return "a string";
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
      if (t.is_floating()) out = double(t.as_floating());
      else if (t.is_integer()) out = double(t.as_integer());
      else return false;
      return true;
    case 2:
      if (!t.is_boolean()) return false;
      out = t.as_boolean();
      return true;
    default:
      if (!t.is_string()) return false;
      out = std::string(t.as_string());
      return true;
  }
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
      default: {
        std::string s = text;
        if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
          s = s.substr(1, s.size() - 2);
        out = s;
        return true;
      }
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
    STRATA_CHECK(table.is_table(), "{}: '{}' should be a [section] table (model, data, train, parallel, checkpoint)", path,
                 section);
    for (const auto& [name, value] : table.as_table()) {
      const std::string key = section + "." + name;
      const Binding* b = find_binding(key);
      STRATA_CHECK(b != nullptr, "{}: unknown key '{}' (run `strata config --doc` for the fields)", path, key);
      ConfigValue v;
      STRATA_CHECK(from_toml(value, b->field.default_value, v), "{}: {}: expected {}, got {}", path, key,
                   type_name(b->field.default_value), describe(value));
      STRATA_CHECK(fits(*b, v), "{}: {} = {}: out of range (expected a 32-bit integer)", path, key, describe(value));
      b->set(config, v);
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
}

std::string format_value(const ConfigValue& v) {
  switch (v.index()) {
    case 0: return std::to_string(std::get<int64_t>(v));
    case 1: return fmt::format("{}", std::get<double>(v));
    case 2: return std::get<bool>(v) ? "true" : "false";
    default: return toml::format(toml::value(std::get<std::string>(v)));
  }
}

}  // namespace

std::vector<std::pair<const char*, int>> model_fields(const ModelConfig& m) {
  return {{"n_layer", m.n_layer}, {"n_head", m.n_head}, {"d_model", m.d_model}, {"vocab_size", m.vocab_size},
          {"seq_len", m.seq_len}};
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

void validate_config(const Config& c) {
  const std::string& f = c.source;
  auto positive = [&](const char* key, int64_t v) { STRATA_CHECK(v > 0, "{}: {} = {}: expected > 0", f, key, v); };
  positive("model.n_layer", c.model.n_layer);
  positive("model.n_head", c.model.n_head);
  positive("model.d_model", c.model.d_model);
  positive("model.seq_len", c.model.seq_len);
  positive("train.batch_size", c.train.batch_size);
  positive("train.log_every", c.train.log_every);
  STRATA_CHECK(c.model.vocab_size >= 2, "{}: model.vocab_size = {}: expected >= 2", f, c.model.vocab_size);
  STRATA_CHECK(c.model.d_model % c.model.n_head == 0,
               "{}: model.d_model = {} must be divisible by model.n_head = {} (head size d_model / n_head)", f,
               c.model.d_model, c.model.n_head);
  STRATA_CHECK(c.data.prefetch >= 0 && c.data.prefetch <= 64, "{}: data.prefetch = {}: expected 0..64", f,
               c.data.prefetch);
  STRATA_CHECK(c.train.steps >= 0, "{}: train.steps = {}: expected >= 0", f, c.train.steps);
  STRATA_CHECK(c.train.lr > 0, "{}: train.lr = {}: expected > 0", f, c.train.lr);
  STRATA_CHECK(c.train.min_lr >= 0 && c.train.min_lr <= c.train.lr, "{}: train.min_lr = {}: expected in [0, lr = {}]",
               f, c.train.min_lr, c.train.lr);
  STRATA_CHECK(c.train.warmup_steps >= 0, "{}: train.warmup_steps = {}: expected >= 0", f, c.train.warmup_steps);
  static const std::set<std::string> schedules = {"constant", "cosine", "linear"};
  STRATA_CHECK(schedules.count(c.train.lr_schedule), "{}: train.lr_schedule = '{}': expected constant, cosine or linear",
               f, c.train.lr_schedule);
  STRATA_CHECK(c.train.beta1 >= 0 && c.train.beta1 < 1, "{}: train.beta1 = {}: expected in [0, 1)", f, c.train.beta1);
  STRATA_CHECK(c.train.beta2 >= 0 && c.train.beta2 < 1, "{}: train.beta2 = {}: expected in [0, 1)", f, c.train.beta2);
  STRATA_CHECK(c.train.eps > 0, "{}: train.eps = {}: expected > 0", f, c.train.eps);
  STRATA_CHECK(c.train.weight_decay >= 0, "{}: train.weight_decay = {}: expected >= 0", f, c.train.weight_decay);
  STRATA_CHECK(c.train.grad_clip >= 0, "{}: train.grad_clip = {}: expected >= 0 (0: off)", f, c.train.grad_clip);
  STRATA_CHECK(c.train.eval_every >= 0 && c.train.eval_batches >= 0,
               "{}: train.eval_every and train.eval_batches: expected >= 0", f);
  STRATA_CHECK(c.train.sample_tokens >= 0, "{}: train.sample_tokens = {}: expected >= 0", f, c.train.sample_tokens);
  STRATA_CHECK(c.train.sample_temperature > 0, "{}: train.sample_temperature = {}: expected > 0", f,
               c.train.sample_temperature);
  STRATA_CHECK(c.parallel.dp == -1 || c.parallel.dp >= 1, "{}: parallel.dp = {}: expected >= 1, or -1 for the rest", f,
               c.parallel.dp);
  STRATA_CHECK(c.parallel.tp >= 1, "{}: parallel.tp = {}: expected >= 1", f, c.parallel.tp);
  STRATA_CHECK(c.parallel.pp >= 1 && c.parallel.pp <= c.model.n_layer,
               "{}: parallel.pp = {}: expected 1 .. model.n_layer = {} (each stage holds at least one layer)", f,
               c.parallel.pp, c.model.n_layer);
  STRATA_CHECK(c.parallel.schedule == "1f1b" || c.parallel.schedule == "gpipe",
               "{}: parallel.schedule = '{}': expected 1f1b or gpipe", f, c.parallel.schedule);
  STRATA_CHECK(c.train.max_wall_minutes >= 0, "{}: train.max_wall_minutes = {}: expected >= 0", f,
               c.train.max_wall_minutes);
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
    out += fmt::format("{} = {}\n", name, format_value(b.get(config)));
  }
  return out;
}

}  // namespace strata
