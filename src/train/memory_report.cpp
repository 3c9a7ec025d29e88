#include "train/memory_report.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>

namespace strata {

int activation_slots(PipelineSchedule schedule, int n_micro, int stage, int stages) {
  if (stages <= 1) return 1;
  return schedule == PipelineSchedule::GPipe ? n_micro : std::min(n_micro, stages - stage);
}

std::string format_bytes(double bytes) {
  if (bytes < 1024) return fmt::format("{:.0f} B", bytes);
  if (bytes < 1024.0 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024);
  if (bytes < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", bytes / (1024.0 * 1024 * 1024));
}

std::string describe(const MemoryEstimate& m) {
  std::string s = fmt::format("parameters {} + gradients {} + AdamW {} + activations {}", format_bytes(m.parameters),
                              format_bytes(m.gradients), format_bytes(m.optimizer), format_bytes(m.activations));
  if (m.slot_bytes > 0) s += fmt::format(" ({} x {})", m.slots, format_bytes(m.slot_bytes));
  if (m.teacher > 0) s += fmt::format(" + teacher {}", format_bytes(m.teacher));
  return s + fmt::format(" = {}", format_bytes(m.total()));
}

double peak_host_rss_bytes() {
  rusage usage{};
  return getrusage(RUSAGE_SELF, &usage) == 0 ? double(usage.ru_maxrss) * 1024.0 : 0.0;  // ru_maxrss: KiB on Linux
}

}  // namespace strata
