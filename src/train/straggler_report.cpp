#include "train/straggler_report.hpp"

#include <algorithm>

namespace strata {

StragglerCheck slowest_rank(std::vector<double> busy_ms) {
  StragglerCheck c;
  c.busy_ms = busy_ms;
  if (busy_ms.size() < 2) return c;
  c.slowest = int(std::max_element(busy_ms.begin(), busy_ms.end()) - busy_ms.begin());
  busy_ms.erase(busy_ms.begin() + c.slowest);  // the others
  std::sort(busy_ms.begin(), busy_ms.end());
  c.median_ms = busy_ms[busy_ms.size() / 2];
  c.ratio = c.median_ms > 0 ? c.busy_ms[size_t(c.slowest)] / c.median_ms : 0;
  return c;
}

std::optional<StragglerCheck> StragglerWatch::add(int64_t step, double busy_ms, Communicator& world) {
  if (every_ <= 0) return std::nullopt;
  if (first_step_ < 0) first_step_ = step;
  sum_ms_ += busy_ms;
  ++count_;
  if (step % every_ != 0) return std::nullopt;
  double mean = sum_ms_ / double(count_);
  std::vector<double> all(static_cast<size_t>(world.size()));
  world.all_gather(&mean, all.data(), 1);
  StragglerCheck c = slowest_rank(std::move(all));
  c.first_step = first_step_;
  c.last_step = step;
  first_step_ = -1;
  count_ = 0;
  sum_ms_ = 0;
  return c;
}

}  // namespace strata
