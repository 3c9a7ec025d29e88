#pragma once
// Elapsed wall time since a steady_clock time point, for the timings the tools and the trainer report.
#include <chrono>

namespace strata {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace strata
