#pragma once
// Debug-only fault injection for the step guard's tests (tests/e2e/test_guard.py), never set in production:
// STRATA_DEBUG_INJECT="KIND:STEP[:COUNT[:RANK]]" poisons one gradient element on rank RANK (default 0) for the
// batches that steps STEP .. STEP + COUNT - 1 read in a run that skips none (global batch indices STEP - 1 ..). The
// fault follows the data, as a bad batch does: once the guard skips those batches it is gone. KIND: nan (the element
// becomes NaN), spike (it becomes 1e4: a gradient-norm spike) or slow (no poison: the rank sleeps kSlowMs before
// its forward/backward: a straggler).
#include <cstdint>
#include <optional>
#include <string>

namespace strata {

inline constexpr int kSlowMs = 50;

struct GradientFault {
  std::string kind;  // nan | spike | slow
  int64_t first_batch = 0, count = 1;
  int rank = 0;
  bool hits(int64_t batch, int world_rank) const {
    return world_rank == rank && batch >= first_batch && batch < first_batch + count;
  }
  float value() const;  // what the poisoned element becomes
};

// The fault STRATA_DEBUG_INJECT asks for (nullopt when unset); throws on a malformed value.
std::optional<GradientFault> gradient_fault_from_env();

}  // namespace strata
