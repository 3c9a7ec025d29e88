#include "core/progress.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace strata {

bool progress_wanted(bool forced_on, bool forced_off) {
  return forced_on || (!forced_off && ::isatty(STDERR_FILENO) == 1);
}

namespace {
// STRATA_PROGRESS_INTERVAL_S overrides every progress interval (tests see lines from jobs shorter than a second).
double interval_override(double interval_s) {
  const char* v = std::getenv("STRATA_PROGRESS_INTERVAL_S");
  if (v == nullptr || *v == '\0') return interval_s;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  return end != v && s >= 0 ? s : interval_s;
}
}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const auto s = int64_t(seconds + 0.5);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
}

Progress::Progress(std::string label, std::string unit, int64_t total, bool enabled, double interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      interval_s_(interval_override(interval_s)),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() < interval_s_) return;
  last_print_ = now;
  print(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  // A job shorter than one interval gets no progress at all (its result line says enough).
  if (enabled_ && (printed_ || elapsed_s() >= interval_s_)) print(true);
}

void Progress::print(bool final) {
  const double t = elapsed_s();
  const double rate = t > 0 ? double(done_) / t : 0.0;
  std::string line = fmt::format("{}: {} {}", label_, done_, unit_);
  if (total_ > 0) line += fmt::format(" of {} ({:.0f}%)", total_, 100.0 * double(done_) / double(total_));
  line += fmt::format(", {:.3g} {}/s", rate, unit_);
  if (final)
    line += fmt::format(", done in {:.1f} s", t);
  else if (total_ > 0 && rate > 0)
    line += ", ETA " + format_duration(double(total_ - done_) / rate);
  fmt::print(stderr, "{}\n", line);
  printed_ = true;
  std::fflush(stderr);
}

}  // namespace strata
