#pragma once
// Inverted dropout with masks drawn from the counter-based RNG (DESIGN.md principle 4): whether element e of sample s
// at a dropout site survives is a pure function of (site key, s, e), where the key combines the run's seed, the site
// (e.g. "dropout.attention.3") and the step, s is the sample's position in the step's global batch and e the element's
// index within the whole sample (all tensor-parallel slices together). So any layout, any microbatching and a resumed
// run draw the same masks, and backward regenerates them instead of storing them.
//   c = s * per_sample + e;  u = 16-bit lane (c mod 4) of bits(key, c / 4);  keep iff u >= t = round(p * 2^16)
//   y = x * (keep ? 2^16 / (2^16 - t) : 0)    (kept values scaled by 1 / (1 - t / 2^16): the mean is kept exactly)
// One 64-bit draw serves four consecutive elements, and on the host each thread walks a run of consecutive counters
// (no division per element): masking a step's attention probabilities costs a few percent of the step, not a third.
#include <cmath>
#include <cstdint>
#include <string>

#include "core/rng.hpp"
#include "kernels/common.hpp"

namespace strata {

// One site's mask over a microbatch: its local sample b is global sample first_sample + b; each sample holds
// per_sample elements of which this rank has `local` (its slice starting at element `offset`).
struct DropoutMask {
  uint64_t key = 0;
  double p = 0;  // the drop probability, in [0, 1); 0: the identity
  int64_t first_sample = 0;
  int64_t per_sample = 0, offset = 0, local = 0;
  bool active() const { return threshold() > 0; }
  // Dropped iff the element's 16 random bits are below this: p rounded to a multiple of 2^-16 (at most 65535).
  uint32_t threshold() const {
    const double t = std::nearbyint(p * 65536.0);
    return t <= 0 ? 0u : t >= 65535 ? 65535u : uint32_t(t);
  }
  // What a kept element is multiplied by: 1 / (1 - threshold / 2^16).
  double scale() const { return 65536.0 / double(65536u - threshold()); }
};

// The mask of `site` at `step` for a microbatch starting at global sample first_sample, whose samples hold
// per_sample elements (local of them here, from offset).
inline DropoutMask dropout_mask(uint64_t seed, const std::string& site, int64_t step, double p, int64_t first_sample,
                                int64_t per_sample, int64_t offset = 0, int64_t local = -1) {
  return {
      rng::make_key(seed, site, uint64_t(step)), p, first_sample, per_sample, offset, local < 0 ? per_sample : local};
}

// The 16 random bits of counter c, given bits(key, c / 4).
KOKKOS_INLINE_FUNCTION uint32_t dropout_lane(uint64_t group_bits, uint64_t c) {
  return uint32_t(group_bits >> (16 * (c & 3))) & 0xFFFFu;
}

KOKKOS_INLINE_FUNCTION bool dropout_keeps(uint64_t key, uint32_t threshold, uint64_t c) {
  return dropout_lane(rng::bits(key, c >> 2), c) >= threshold;
}

namespace dropout_detail {

// Consecutive counters c0, c0 + 1, ..., c0 + n - 1: f(j, factor) for each, factor = scale (kept) or 0 (dropped).
// Host loops, in chunks of 64 draws: the draws first (a loop of independent multiply chains, vectorised), then each
// element's factor (compares and selects, vectorised), then f: no data-dependent branch, which at random keep/drop
// outcomes would mispredict a third of the time.
template <class T, class F>
KOKKOS_INLINE_FUNCTION void for_each_factor(uint64_t key, uint32_t threshold, T scale, uint64_t c0, int64_t n,
                                            const F& f) {
  constexpr int64_t kGroups = 64;
  uint64_t bits[kGroups];
  T factor[4 * kGroups];
  const uint64_t end = c0 + uint64_t(n), last_group = (end + 3) >> 2;
  for (uint64_t g0 = c0 >> 2; g0 < last_group; g0 += kGroups) {
    const int64_t groups = int64_t(last_group - g0 < uint64_t(kGroups) ? last_group - g0 : uint64_t(kGroups));
    for (int64_t g = 0; g < groups; ++g) bits[g] = rng::bits(key, g0 + uint64_t(g));
    for (int64_t k = 0; k < 4 * groups; ++k)
      factor[k] = uint32_t(bits[k >> 2] >> (16 * (k & 3)) & 0xFFFFu) >= threshold ? scale : T(0);
    const uint64_t lo = g0 * 4 > c0 ? g0 * 4 : c0;
    const uint64_t hi = (g0 + uint64_t(groups)) * 4 < end ? (g0 + uint64_t(groups)) * 4 : end;
    const T* chunk = factor + (lo - g0 * 4);
    const int64_t first = int64_t(lo - c0), count = int64_t(hi - lo);
    for (int64_t k = 0; k < count; ++k) f(first + k, chunk[k]);
  }
}

// Elements per host work item: a sample's local elements in runs of this many consecutive counters.
inline constexpr int64_t kHostRun = 1024;

// op(i, factor) over the mask's [samples, local] elements: factor = 1 / (1 - p) where kept, 0 where dropped.
template <class T, class Op>
void apply(const char* label, const DropoutMask& m, int samples, const Op& op) {
  const uint64_t key = m.key;
  const uint32_t threshold = m.threshold();
  const T scale = T(m.scale());
  const int64_t local = m.local, per_sample = m.per_sample, base = m.first_sample * m.per_sample + m.offset;
  if constexpr (kDeviceMemory) {
    Kokkos::parallel_for(
        label, range(size_t(samples) * size_t(local)), KOKKOS_LAMBDA(const int64_t i) {
          const int64_t b = i / local, e = i - b * local;
          op(i, dropout_keeps(key, threshold, uint64_t(base + b * per_sample + e)) ? scale : T(0));
        });
  } else {
    const int64_t runs = (local + kHostRun - 1) / kHostRun;
    Kokkos::parallel_for(
        label, range(size_t(samples) * size_t(runs)), KOKKOS_LAMBDA(const int64_t w) {
          const int64_t b = w / runs, first = (w - b * runs) * kHostRun;
          const int64_t n = local - first < kHostRun ? local - first : kHostRun;
          const int64_t at = b * local + first;
          for_each_factor(key, threshold, scale, uint64_t(base + b * per_sample + first), n,
                          [&](int64_t j, T factor) { op(at + j, factor); });
        });
  }
}

}  // namespace dropout_detail

// y[B, local] = mask(x) / (1 - p); y may be x (in place: the backward of dropout is the same map on the gradient).
template <class T>
void dropout_apply(const Vec<T>& y, const Vec<T>& x, const DropoutMask& m, int samples) {
  dropout_detail::apply<T>(
      "strata::dropout::apply", m, samples, KOKKOS_LAMBDA(const int64_t i, T factor) { y(i) = x(i) * factor; });
}

// y[B, local] = r + mask(branch) / (1 - p): a residual branch's dropout fused with the residual add.
template <class T>
void dropout_residual_add(const Vec<T>& y, const Vec<T>& r, const Vec<T>& branch, const DropoutMask& m, int samples) {
  dropout_detail::apply<T>(
      "strata::dropout::residual_add", m, samples,
      KOKKOS_LAMBDA(const int64_t i, T factor) { y(i) = r(i) + branch(i) * factor; });
}

// Attention probabilities: the sample's elements are [heads_total, T, T] (query, key); this rank holds heads
// [head_offset, head_offset + local heads). Site key and rate as in DropoutMask (per_sample, offset, local unused).
struct AttentionDropout {
  DropoutMask mask;
  int heads_total = 0, head_offset = 0;
  bool active() const { return mask.active(); }
};

// One query tile of sequence b: probs[H, rows, keys] (queries first .. first + rows - 1 of a sequence of seq) in
// place: probs = mask(probs) / (1 - p). Element (h, r, j) has counter ((s * heads_total + head_offset + h) * T +
// first + r) * T + j for global sample s.
template <class T>
void dropout_attention_tile(const Vec<T>& probs, const AttentionDropout& d, int b, int heads, int rows, int keys,
                            int first, int seq) {
  const uint64_t key = d.mask.key;
  const uint32_t threshold = d.mask.threshold();
  const uint64_t sample = uint64_t(d.mask.first_sample + b), heads_total = uint64_t(d.heads_total);
  const uint64_t head_offset = uint64_t(d.head_offset), T_ = uint64_t(seq);
  const T scale = T(d.mask.scale());
  auto row_counter = KOKKOS_LAMBDA(const int64_t row) {  // row = h * rows + r
    const int64_t h = row / rows, r = row - h * rows;
    return ((sample * heads_total + head_offset + uint64_t(h)) * T_ + uint64_t(first + r)) * T_;
  };
  if constexpr (kDeviceMemory) {
    Kokkos::parallel_for(
        "strata::dropout::attention_tile", range(size_t(heads) * rows * keys), KOKKOS_LAMBDA(const int64_t i) {
          const int64_t row = i / keys, j = i - row * keys;
          probs(i) *= dropout_keeps(key, threshold, row_counter(row) + uint64_t(j)) ? scale : T(0);
        });
  } else {
    Kokkos::parallel_for(
        "strata::dropout::attention_tile", range(size_t(heads) * rows), KOKKOS_LAMBDA(const int64_t row) {
          const int64_t at = row * keys;
          T* p = probs.data() + at;
          dropout_detail::for_each_factor(key, threshold, scale, row_counter(row), keys,
                                          [&](int64_t j, T factor) { p[j] *= factor; });
        });
  }
}

}  // namespace strata
