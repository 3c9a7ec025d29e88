#pragma once
// Periodic progress lines for long jobs (preprocessing): "label: done/total unit (pct), rate, ETA", at most one
// line per `interval_s` plus a final line, to stderr so that stdout stays the command's result.
#include <chrono>
#include <cstdint>
#include <string>

namespace strata {

// Whether a command shows progress lines: --progress forces them, --quiet silences them; otherwise only when stderr
// is a terminal (batch logs stay quiet).
bool progress_wanted(bool forced_on, bool forced_off);

// A duration for people: "42.0s", "3m07s", "2h05m".
std::string format_duration(double seconds);

class Progress {
 public:
  // total <= 0: unknown (no percentage or ETA). enabled = false prints nothing (other ranks, tests). The environment
  // variable STRATA_PROGRESS_INTERVAL_S, when set, replaces interval_s (tests).
  Progress(std::string label, std::string unit, int64_t total, bool enabled, double interval_s = 1.0);
  // Records that `done` units are finished (absolute, not a delta); prints when the interval has passed.
  void update(int64_t done);
  // The final line (rate over the whole run), once.
  void finish();
  // The same, with the total known only now (a callback told both).
  void update(int64_t done, int64_t total) {
    total_ = total;
    update(done);
  }
  double elapsed_s() const;

 private:
  void print(bool final);
  std::string label_, unit_;
  int64_t total_, done_ = 0;
  bool enabled_, finished_ = false, printed_ = false;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace strata
