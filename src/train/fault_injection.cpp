#include "train/fault_injection.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.hpp"

namespace strata {

float GradientFault::value() const { return kind == "nan" ? std::numeric_limits<float>::quiet_NaN() : 1e4f; }

std::optional<GradientFault> gradient_fault_from_env() {
  const char* v = std::getenv("STRATA_DEBUG_INJECT");
  if (v == nullptr || *v == '\0') return std::nullopt;
  char kind[16] = {0};
  long step = 0, count = 1, rank = 0;
  const int n = std::sscanf(v, "%15[^:]:%ld:%ld:%ld", kind, &step, &count, &rank);
  GradientFault f{kind, step - 1, count, int(rank)};
  STRATA_CHECK(
      n >= 2 && (f.kind == "nan" || f.kind == "spike" || f.kind == "slow") && step >= 1 && count >= 1 && rank >= 0,
      "STRATA_DEBUG_INJECT = '{}': expected nan|spike|slow:STEP[:COUNT[:RANK]] with STEP >= 1", v);
  return f;
}

}  // namespace strata
