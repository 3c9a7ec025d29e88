#include "train/step_guard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace strata {
namespace {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::deque<double> numbers(const nlohmann::json& j) {
  std::deque<double> out;
  for (const auto& v : j) out.push_back(v.get<double>());
  return out;
}

std::vector<std::pair<int64_t, int64_t>> pairs(const nlohmann::json& j) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& p : j) out.emplace_back(p.at(0).get<int64_t>(), p.at(1).get<int64_t>());
  return out;
}

nlohmann::json parse_state(const std::string& json, const std::string& where) {
  try {
    auto j = nlohmann::json::parse(json);
    STRATA_CHECK(j.is_object() && j.value("version", 0) == 1, "{}: attribute 'guard': expected a version 1 object",
                 where);
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw_error(__FILE__, __LINE__,
                fmt::format("{}: attribute 'guard': expected the step guard's JSON state ({})", where, e.what()));
  }
}

}  // namespace

StepGuard::StepGuard(const GuardConfig& config, int64_t batch_size) : config_(config), batch_size_(batch_size) {
  add_configured_skips();
}

// The operator's guard.skip_batches, as sample intervals; added again after a restore replaced the intervals.
void StepGuard::add_configured_skips() {
  for (int64_t b : config_.skip_batches) add_skipped(b * batch_size_, (b + 1) * batch_size_);
}

std::string StepGuard::spike(const char* what, double value, const std::deque<double>& window) const {
  if (config_.spike_z <= 0 || int64_t(window.size()) < config_.window) return {};
  double mean = 0;
  for (double v : window) mean += v;
  mean /= double(window.size());
  double var = 0;
  for (double v : window) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(window.size()));
  if (!(sd > 0)) return {};
  const double z = (value - mean) / sd;
  if (z <= config_.spike_z) return {};
  return fmt::format(
      "{} spike: {:.6g} is z = {:.1f} above the last {} steps' mean {:.6g} (sd {:.3g}; guard.spike_z = {})", what,
      value, z, window.size(), mean, sd, config_.spike_z);
}

GuardVerdict StepGuard::judge(int64_t step, int64_t position, double loss, double grad_norm) {
  GuardVerdict v;
  if (!std::isfinite(loss))
    v.cause = fmt::format("loss is {}", loss);
  else if (!std::isfinite(grad_norm))
    v.cause = fmt::format("gradient norm is {}", grad_norm);
  else if (auto s = spike("loss", loss, losses_); !s.empty())
    v.cause = std::move(s);
  else if (auto s2 = spike("gradient norm", grad_norm, norms_); !s2.empty())
    v.cause = std::move(s2);
  if (v.cause.empty()) {
    bad_steps_.clear();
    losses_.push_back(loss);
    norms_.push_back(grad_norm);
    while (int64_t(losses_.size()) > config_.window) losses_.pop_front();
    while (int64_t(norms_.size()) > config_.window) norms_.pop_front();
    return v;
  }
  v.skip = true;
  bad_steps_.emplace_back(step, position);
  ++skipped_steps_;
  events_.push_back({{"step", step},
                     {"event", "skip"},
                     {"cause", v.cause},
                     {"loss", finite_or_null(loss)},
                     {"grad_norm", finite_or_null(grad_norm)},
                     {"batch_position", position},
                     {"bad_in_row", int64_t(bad_steps_.size())}});
  return v;
}

bool StepGuard::rollback_due() const {
  return config_.rollback_after > 0 && int64_t(bad_steps_.size()) >= config_.rollback_after;
}

void StepGuard::check_rollback_allowed(int64_t at_step) const {
  const std::string last_cause = events_.empty() ? std::string() : events_.back().value("cause", std::string());
  STRATA_CHECK(rollbacks_ < config_.max_rollbacks,
               "guard: {} bad steps in a row ({} .. {}; the last: {}) after {} rollback(s), guard.max_rollbacks = {}: "
               "stopping; the run keeps diverging (lower train.lr, lengthen train.warmup_steps, tighten "
               "train.grad_clip or check the data)",
               bad_steps_.size(), first_bad_step(), at_step, last_cause, rollbacks_, config_.max_rollbacks);
}

void StepGuard::record_rollback(int64_t at_step, int64_t to_step, const std::string& checkpoint) {
  check_rollback_allowed(at_step);
  nlohmann::json batches = nlohmann::json::array();
  for (const auto& [step, position] : bad_steps_) {
    add_skipped(position, position + batch_size_);
    batches.push_back(position);
  }
  ++rollbacks_;
  events_.push_back({{"step", at_step},
                     {"event", "rollback"},
                     {"to_step", to_step},
                     {"checkpoint", checkpoint},
                     {"skipped_batch_positions", batches},
                     {"batch_size", batch_size_},
                     {"rollback", rollbacks_}});
  bad_steps_.clear();
}

void StepGuard::add_skipped(int64_t begin, int64_t end) {
  skipped_.emplace_back(begin, end);
  std::sort(skipped_.begin(), skipped_.end());
  std::vector<std::pair<int64_t, int64_t>> merged;
  for (const auto& iv : skipped_) {
    if (!merged.empty() && iv.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, iv.second);
    else
      merged.push_back(iv);
  }
  skipped_ = std::move(merged);
}

int64_t StepGuard::advance(int64_t position, int64_t batches) const {
  int64_t at = position + batches * batch_size_;
  for (const auto& [begin, end] : skipped_) {
    if (end <= position) continue;  // behind the start
    if (begin > at) break;
    at += end - std::max(begin, position);
  }
  return at;
}

std::string StepGuard::state_json() const {
  nlohmann::json bad = nlohmann::json::array(), skipped = nlohmann::json::array();
  for (const auto& [s, p] : bad_steps_) bad.push_back({s, p});
  for (const auto& [b, e] : skipped_) skipped.push_back({b, e});
  return nlohmann::json{{"version", 1},
                        {"losses", losses_},
                        {"norms", norms_},
                        {"bad_steps", bad},
                        {"skipped", skipped},
                        {"rollbacks", rollbacks_},
                        {"skipped_steps", skipped_steps_},
                        {"events", events_}}
      .dump();
}

void StepGuard::restore_window(const std::string& json, const std::string& where) {
  if (json.empty()) {  // a checkpoint of a run without the guard's state: nothing accepted yet
    losses_.clear();
    norms_.clear();
    bad_steps_.clear();
    return;
  }
  const auto j = parse_state(json, where);
  try {
    losses_ = numbers(j.at("losses"));
    norms_ = numbers(j.at("norms"));
    bad_steps_ = pairs(j.at("bad_steps"));
  } catch (const nlohmann::json::exception& e) {
    throw_error(__FILE__, __LINE__, fmt::format("{}: attribute 'guard': {}", where, e.what()));
  }
}

void StepGuard::restore(const std::string& json, const std::string& where) {
  restore_window(json, where);
  if (json.empty()) return;
  const auto j = parse_state(json, where);
  try {
    skipped_ = pairs(j.at("skipped"));
    rollbacks_ = j.at("rollbacks").get<int64_t>();
    skipped_steps_ = j.at("skipped_steps").get<int64_t>();
    events_ = j.at("events");
  } catch (const nlohmann::json::exception& e) {
    throw_error(__FILE__, __LINE__, fmt::format("{}: attribute 'guard': {}", where, e.what()));
  }
  add_configured_skips();
}

}  // namespace strata
