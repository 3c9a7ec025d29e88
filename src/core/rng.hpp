#pragma once
// Counter-based random numbers (DESIGN.md principle 4): every draw is a pure function of
// (seed, stream, counter), so a tensor initialised on any layout gets the values one rank would:
// stream = hash of the tensor name, counter = global element index (and the step, for dropout).
#include <Kokkos_Core.hpp>

#include "kernels/math.hpp"

#include <cstdint>
#include <string>

namespace strata::rng {

// SplitMix64's finaliser: a bijective 64-bit mix with full avalanche.
KOKKOS_INLINE_FUNCTION uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 64 random bits for (key, counter); key combines seed, stream and step (see make_key).
KOKKOS_INLINE_FUNCTION uint64_t bits(uint64_t key, uint64_t counter) { return mix64(key ^ mix64(counter)); }

// Uniform in (0, 1): 53 random bits, offset by half an ulp so that 0 never occurs (log-safe).
KOKKOS_INLINE_FUNCTION double uniform(uint64_t key, uint64_t counter) {
  return (double(bits(key, counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller from the counters 2i and 2i+1.
KOKKOS_INLINE_FUNCTION double normal(uint64_t key, uint64_t index) {
  const double u1 = uniform(key, 2 * index), u2 = uniform(key, 2 * index + 1);
  return kmath::sqrt(-2.0 * kmath::log(u1)) * kmath::cos(6.283185307179586 * u2);
}

// A stream key from the run seed, a name (tensor or purpose) and a step.
uint64_t make_key(uint64_t seed, const std::string& name, uint64_t step = 0);

}  // namespace strata::rng
