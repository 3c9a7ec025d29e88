#pragma once
// Magnitude pruning (train/pruning.hpp): the digit histograms of a radix select over |w|, and 0/1 masks. The bits
// of a non-negative float ordered as an unsigned integer order the floats (+inf and NaN above every finite
// value), so the k-th smallest |w| over a tensor split across ranks is found one 8-bit digit at a time, each
// digit from a 256-bin histogram summed over the ranks: the result is the same at every layout.
#include <cstdint>

#include "kernels/common.hpp"

namespace strata {

// The bits of |x| as an unsigned integer.
KOKKOS_INLINE_FUNCTION uint32_t magnitude_bits(float x) {
  union {
    float f;
    uint32_t u;
  } bits{x};
  return bits.u & 0x7fffffffu;
}

// Digit `pass` (0: the highest 8 bits .. 3: the lowest) of |w[n]|'s bits, over the elements whose higher digits
// equal `prefix` (pass digits, the first one highest): hist[256] += the count of each digit value.
inline void magnitude_digit_histogram(const Vec<float>& w, size_t n, uint32_t prefix, int pass,
                                      const Kokkos::View<int64_t*, MemSpace>& hist) {
  const int shift = 24 - 8 * pass;
  Kokkos::parallel_for(
      "strata::pruning::digit_histogram", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const uint64_t bits = magnitude_bits(w(i));
        if ((bits >> (shift + 8)) == prefix) Kokkos::atomic_increment(&hist(int((bits >> shift) & 255u)));
      });
}

// mask[n] = 0 where |w[n]| <= the magnitude whose bits are `threshold`; other entries keep their value (a mask only
// ever loses entries).
inline void prune_at_or_below(const Vec<float>& mask, const Vec<float>& w, size_t n, uint32_t threshold) {
  Kokkos::parallel_for(
      "strata::pruning::prune", range(n), KOKKOS_LAMBDA(const int64_t i) {
        if (magnitude_bits(w(i)) <= threshold) mask(i) = 0.0f;
      });
}

// x[n] *= mask[n]   (parameters after the optimizer step, gradients before the norm)
template <class T>
void apply_mask(const Vec<T>& x, const Vec<float>& mask, size_t n) {
  Kokkos::parallel_for(
      "strata::pruning::apply_mask", range(n), KOKKOS_LAMBDA(const int64_t i) { x(i) *= T(mask(i)); });
}

// The zeros of mask[n].
inline int64_t count_pruned(const Vec<float>& mask, size_t n) {
  int64_t zeros = 0;
  Kokkos::parallel_reduce(
      "strata::pruning::count", range(n),
      KOKKOS_LAMBDA(const int64_t i, int64_t& acc) { acc += mask(i) == 0.0f ? 1 : 0; }, zeros);
  return zeros;
}

}  // namespace strata
