#pragma once
// exp and tanh that vectorise on the host. glibc's expf/tanhf are scalar calls (GELU alone took ~20% of a
// training step through them); this exp is pure arithmetic (Cephes' range reduction and degree-6
// polynomial, ~2 ulp in float), which GCC turns into AVX-512. Device code and double keep the library.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/math.hpp"

namespace strata::fastmath {

KOKKOS_INLINE_FUNCTION float exp_poly(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick: floor() would block vectorisation (GCC needs
  // -fno-trapping-math for it), and this is exact for |n| < 2^22.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

template <class T>
KOKKOS_INLINE_FUNCTION T exp(T x) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return kmath::exp(x);
#else
  if constexpr (std::is_same_v<T, float>)
    return exp_poly(x);
  else
    return kmath::exp(x);
#endif
}

// tanh(u) = 1 - 2 / (exp(2u) + 1): exact limits +-1, absolute error ~1e-7 in float.
template <class T>
KOKKOS_INLINE_FUNCTION T tanh(T u) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return kmath::tanh(u);
#else
  if constexpr (std::is_same_v<T, float>)
    return 1.0f - 2.0f / (exp_poly(2.0f * u) + 1.0f);
  else
    return kmath::tanh(u);
#endif
}

// tanh with a small relative error everywhere (~2e-7 in float): near 0, where 1 - 2 / (exp(2u) + 1) cancels, the
// odd series u - u^3/3 + 2u^5/15 - 17u^7/315 (|u| < 1/16: truncation < 1e-11). For the recurrent cells, whose
// states are often small. Branch-free (both computed), so it vectorises.
template <class T>
KOKKOS_INLINE_FUNCTION T tanh_precise(T u) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return kmath::tanh(u);
#else
  if constexpr (std::is_same_v<T, float>) {
    const float u2 = u * u;
    const float series = u * (1.0f + u2 * (-1.0f / 3.0f + u2 * (2.0f / 15.0f + u2 * (-17.0f / 315.0f))));
    const float formula = 1.0f - 2.0f / (exp_poly(2.0f * u) + 1.0f);
    return u2 < 1.0f / 256.0f ? series : formula;
  } else {
    return kmath::tanh(u);
  }
#endif
}

}  // namespace strata::fastmath
