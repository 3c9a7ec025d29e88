#pragma once
// Stragglers (docs/monitoring.md): every watchdog.straggler_every steps the ranks gather each one's mean compute time
// per step (the step's time less its waits for communication and data: in synchronous training every rank's step
// takes as long as the slowest's, so only the time it spent working tells them apart), and a rank slower than the
// others' median by watchdog.straggler_factor is named.
#include <cstdint>
#include <optional>
#include <vector>

#include "comm/communicator.hpp"

namespace strata {

struct StragglerCheck {
  int64_t first_step = 0, last_step = 0;  // the steps the means cover
  std::vector<double> busy_ms;            // per rank, in rank order
  int slowest = 0;
  double median_ms = 0, ratio = 0;  // the others' median, and the slowest's mean / it (0: one rank, or a median of 0)
};

// The slowest of `busy_ms` and its ratio to the median of the others (the upper median for an even count).
StragglerCheck slowest_rank(std::vector<double> busy_ms);

class StragglerWatch {
 public:
  explicit StragglerWatch(int64_t every) : every_(every) {}
  // This rank's compute time of step `step`. Every `every` steps (0: never) a collective over `world` returns the
  // check on every rank.
  std::optional<StragglerCheck> add(int64_t step, double busy_ms, Communicator& world);

 private:
  int64_t every_;
  int64_t first_step_ = -1, count_ = 0;
  double sum_ms_ = 0;
};

}  // namespace strata
