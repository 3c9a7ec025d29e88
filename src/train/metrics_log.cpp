#include "train/metrics_log.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "train/memory_report.hpp"

namespace strata {

namespace {
// The lines of an existing metrics file up to (and including) `step`.
std::string lines_through(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step)
      kept += line + "\n";
  }
  return kept;
}
}  // namespace

MetricsLog::MetricsLog(const std::string& jsonl_path, int64_t total_steps, int64_t print_every, int64_t resume_step,
                       Throughput unit, const std::string& tb_dir)
    : path_(jsonl_path), total_steps_(total_steps), print_every_(print_every), unit_(unit) {
  const std::string kept = resume_step >= 0 ? lines_through(jsonl_path, resume_step) : "";
  out_.open(jsonl_path, std::ios::trunc);
  out_ << kept;
  STRATA_CHECK(out_.good(), "cannot write metrics to '{}'", jsonl_path);
  if (!tb_dir.empty()) tb_ = std::make_unique<TensorBoardLog>(tb_dir, resume_step);
}

void MetricsLog::config_text(const std::string& toml, int64_t step) {
  // Markdown: the config as a code block.
  if (tb_) tb_->text("config", "```toml\n" + toml + "```", step);
}

void MetricsLog::step(const StepMetrics& m) {
  const bool tokens = unit_ == Throughput::Tokens;
  nlohmann::json j = {{"step", m.step},
                      {"loss", m.loss},
                      {"lr", m.lr},
                      {"grad_norm", m.grad_norm},
                      {tokens ? "tokens_per_s" : "samples_per_s", m.throughput},
                      {"ms", m.ms},
                      {"comm_ms", m.comm_ms},
                      {"data_wait_ms", m.data_wait_ms}};
  if (m.penalty >= 0) j["penalty"] = m.penalty;
  if (!m.skipped.empty()) j["skipped"] = m.skipped;
  if (m.device_mib >= 0) j["device_mib"] = m.device_mib;
  if (tb_) {
    for (const auto& [tag, value] : {std::pair{"train/loss", m.loss},
                                     {"train/lr", m.lr},
                                     {"train/grad_norm", m.grad_norm},
                                     {tokens ? "train/tokens_per_s" : "train/samples_per_s", m.throughput},
                                     {"time/step_ms", m.ms},
                                     {"time/comm_ms", m.comm_ms},
                                     {"time/data_wait_ms", m.data_wait_ms}})
      tb_->scalar(tag, value, m.step);
    if (m.penalty >= 0) tb_->scalar("train/penalty", m.penalty, m.step);
    tb_->scalar("guard/skipped", m.skipped.empty() ? 0.0 : 1.0, m.step);
    if (m.device_mib >= 0) tb_->scalar("memory/device_used_mib", m.device_mib, m.step);
    if (const double rss = peak_host_rss_bytes(); rss > 0)
      tb_->scalar("memory/host_peak_rss_mib", rss / (1024.0 * 1024.0), m.step);
  }
  out_ << j.dump() << '\n';
  out_.flush();
  STRATA_CHECK(out_.good(), "write to '{}' failed", path_);
  // Elapsed since this run's first step began (its own time: ms back from its end), and the ETA at that pace.
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = m.step;
    first_start_ = now - std::chrono::microseconds(int64_t(m.ms * 1000));
  }
  const double elapsed = std::chrono::duration<double>(now - first_start_).count();
  const double eta = elapsed / double(m.step - first_step_ + 1) * double(total_steps_ - m.step);
  if (m.step % print_every_ == 0 || m.step == 1 || m.step == total_steps_ || !m.skipped.empty())
    fmt::print(
        "step {:>6}/{} | loss {:.4f} | lr {:.3e} | grad norm {:.3f} | {:.0f} {} | {:.1f} ms | {} elapsed, ETA {}{}\n",
        m.step, total_steps_, m.loss, m.lr, m.grad_norm, m.throughput, tokens ? "tok/s" : "samples/s", m.ms,
        format_duration(elapsed), format_duration(eta), m.skipped.empty() ? "" : " | SKIPPED");
  std::fflush(stdout);
}

void MetricsLog::eval(int64_t step, double val_loss, int64_t tokens) {
  nlohmann::json j = {{"step", step}, {"val_loss", val_loss}, {"val_tokens", tokens}};
  if (tb_) {
    tb_->scalar("val/loss", val_loss, step);
    tb_->scalar("val/perplexity", std::exp(val_loss), step);
  }
  out_ << j.dump() << '\n';
  out_.flush();
  fmt::print("eval  {:>6}       | val loss {:.4f} | perplexity {:.2f} | {} tokens\n", step, val_loss,
             std::exp(val_loss), tokens);
  std::fflush(stdout);
}

void MetricsLog::eval(int64_t step, const ClassificationMetrics& m) {
  nlohmann::json j = {{"step", step},
                      {"val_loss", m.loss},
                      {"val_accuracy", m.accuracy},
                      {"val_macro_f1", m.macro.f1},
                      {"val_weighted_f1", m.weighted.f1},
                      {"val_rows", m.rows}};
  std::string topk;
  for (const auto& [k, acc] : m.top_k)
    if (k > 1) {
      j[fmt::format("val_top{}", k)] = acc;
      topk += fmt::format(" | top-{} {:.4f}", k, acc);
    }
  if (tb_)
    for (const auto& [key, value] : j.items())
      if (key != "step" && key != "val_rows") tb_->scalar("val/" + key.substr(4), value.get<double>(), step);
  out_ << j.dump() << '\n';
  out_.flush();
  STRATA_CHECK(out_.good(), "write to '{}' failed", path_);
  fmt::print("eval  {:>6}       | val loss {:.4f} | accuracy {:.4f}{} | macro F1 {:.4f} | {} rows\n", step, m.loss,
             m.accuracy, topk, m.macro.f1, m.rows);
  std::fflush(stdout);
}

}  // namespace strata
