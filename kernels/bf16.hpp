#pragma once
// bfloat16 as raw bits (the upper half of an IEEE float): conversions usable on host and device, independent of
// any vendor type, so one Kokkos kernel converts for CBLAS/oneDNN and for cuBLAS alike.
#include <cstdint>
#include <cstring>

#include <Kokkos_Core.hpp>

namespace strata {

using bf16_bits = uint16_t;

// Round to nearest even; NaN stays a (quiet) NaN, infinities and overflow to infinity as IEEE rounding gives.
KOKKOS_INLINE_FUNCTION bf16_bits float_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_bits((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16_bits(u >> 16);
}

KOKKOS_INLINE_FUNCTION float bf16_to_float(bf16_bits b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// x rounded to the nearest bfloat16, kept in a float.
KOKKOS_INLINE_FUNCTION float round_to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

}  // namespace strata
