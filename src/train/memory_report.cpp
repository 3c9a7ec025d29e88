#include "train/memory_report.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <Kokkos_Core.hpp>

#include <algorithm>

#include "core/error.hpp"

#if defined(KOKKOS_ENABLE_CUDA) && defined(STRATA_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

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

std::string RankMemory::where() const { return fmt::format("rank {} (dp {}, tp {}, pp {})", rank, dp, tp, pp); }

std::vector<RankMemory> gather_memory(Communicator& world, const MemoryEstimate& mine, int dp, int tp, int pp) {
  constexpr size_t kFields = 9;
  const std::vector<double> values{mine.parameters,    mine.gradients, mine.optimizer, mine.activations, mine.teacher,
                                   double(mine.slots), double(dp),     double(tp),     double(pp)};
  std::vector<double> all(kFields * size_t(world.size()));
  world.all_gather(values.data(), all.data(), kFields);
  std::vector<RankMemory> ranks;
  for (int r = 0; r < world.size(); ++r) {
    const double* v = all.data() + size_t(r) * kFields;
    RankMemory m;
    m.estimate = {v[0], v[1], v[2], v[3], v[4], int(v[5]), v[5] > 0 ? v[3] / v[5] : 0};
    m.rank = r, m.dp = int(v[6]), m.tp = int(v[7]), m.pp = int(v[8]);
    ranks.push_back(m);
  }
  return ranks;
}

const RankMemory& largest_memory(const std::vector<RankMemory>& ranks) {
  return *std::max_element(ranks.begin(), ranks.end(), [](const RankMemory& a, const RankMemory& b) {
    return a.estimate.total() < b.estimate.total();
  });
}

double device_memory_used_bytes() {
#if defined(KOKKOS_ENABLE_CUDA) && defined(STRATA_HAVE_CUDA)
  size_t free = 0, total = 0;
  const cudaError_t err = cudaMemGetInfo(&free, &total);
  STRATA_CHECK(err == cudaSuccess, "cudaMemGetInfo: {}", cudaGetErrorString(err));
  return double(total - free);
#else
  return -1;
#endif
}

double peak_host_rss_bytes() {
  rusage usage{};
  return getrusage(RUSAGE_SELF, &usage) == 0 ? double(usage.ru_maxrss) * 1024.0 : 0.0;  // ru_maxrss: KiB on Linux
}

}  // namespace strata
