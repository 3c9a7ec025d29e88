#pragma once
// The memory a rank needs, estimated before training from its layout (the start-up report and
// train.memory_limit_gb): its parameter and gradient buffers, its optimizer state, and the activations of the
// microbatches its pipeline stage holds at once (the model's slots, allocated ahead and measured).
#include <cstdint>
#include <string>
#include <vector>

#include "parallel/pipeline_schedule.hpp"

namespace strata {

struct MemoryEstimate {
  double parameters = 0, gradients = 0, optimizer = 0, activations = 0, teacher = 0;  // bytes
  int slots = 0;          // microbatches' activations held at once
  double slot_bytes = 0;  // one microbatch's (0: the model does not count them)
  double total() const { return parameters + gradients + optimizer + activations + teacher; }
};

// Most microbatches' activations a stage holds at once: all n_micro under GPipe, pp - stage under 1F1B (at most
// n_micro); 1 without pipelining.
int activation_slots(PipelineSchedule schedule, int n_micro, int stage, int stages);

// One rank's estimate and where the rank sits.
struct RankMemory {
  MemoryEstimate estimate;
  int rank = 0, dp = 0, tp = 0, pp = 0;
  std::string where() const;  // "rank 3 (dp 1, tp 0, pp 1)"
};

// Collective over `world`: every rank's estimate (`mine` with this rank's coordinates), in rank order, on every rank.
std::vector<RankMemory> gather_memory(Communicator& world, const MemoryEstimate& mine, int dp, int tp, int pp);
// The rank with the largest total (the first of equals).
const RankMemory& largest_memory(const std::vector<RankMemory>& ranks);

// "parameters 1.2 MiB + gradients 1.2 MiB + AdamW 2.4 MiB + activations 8.0 MiB (2 x 4.0 MiB) = 12.8 MiB"
std::string describe(const MemoryEstimate& m);

// Bytes for people: "512 B", "3.4 KiB", "12.8 MiB", "2.05 GiB".
std::string format_bytes(double bytes);

// The peak resident set size of this process so far, in bytes (getrusage).
double peak_host_rss_bytes();

// Bytes in use on this rank's GPU now (its total less its free memory: one rank per GPU), or -1 on a host build.
// Sampled after every step for the peak (cudaMemGetInfo is cheap); Kokkos' and cuBLAS' pools count, as they occupy it.
double device_memory_used_bytes();

}  // namespace strata
