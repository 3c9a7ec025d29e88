#pragma once
// Inverted dropout with masks drawn from the counter-based RNG (DESIGN.md principle 4): whether element e of sample s
// at a dropout site survives is a pure function of (site key, s, e), where the key combines the run's seed, the site
// (e.g. "dropout.attention.3") and the step, s is the sample's position in the step's global batch and e the element's
// index within the whole sample (all tensor-parallel slices together). So any layout, any microbatching and a resumed
// run draw the same masks, and backward regenerates them instead of storing them.
//   keep(s, e) = (bits(key, s * per_sample + e) >> 11) >= p * 2^53;   y = keep ? x / (1 - p) : 0
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
  bool active() const { return p > 0; }
  // Kept iff the top 53 random bits reach this.
  uint64_t threshold() const { return uint64_t(p * 9007199254740992.0); }
};

// The mask of `site` at `step` for a microbatch starting at global sample first_sample, whose samples hold
// per_sample elements (local of them here, from offset).
inline DropoutMask dropout_mask(uint64_t seed, const std::string& site, int64_t step, double p, int64_t first_sample,
                                int64_t per_sample, int64_t offset = 0, int64_t local = -1) {
  return {
      rng::make_key(seed, site, uint64_t(step)), p, first_sample, per_sample, offset, local < 0 ? per_sample : local};
}

KOKKOS_INLINE_FUNCTION bool dropout_keeps(uint64_t key, uint64_t threshold, uint64_t counter) {
  return (rng::bits(key, counter) >> 11) >= threshold;
}

// y[B, local] = mask(x) / (1 - p); y may be x (in place: the backward of dropout is the same map on the gradient).
template <class T>
void dropout_apply(const Vec<T>& y, const Vec<T>& x, const DropoutMask& m, int samples) {
  const uint64_t key = m.key, threshold = m.threshold();
  const int64_t local = m.local, per_sample = m.per_sample, base = m.first_sample * m.per_sample + m.offset;
  const T scale = T(1) / (T(1) - T(m.p));
  Kokkos::parallel_for(
      "strata::dropout::apply", range(size_t(samples) * size_t(local)), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t b = i / local, e = i - b * local;
        const uint64_t counter = uint64_t(base + b * per_sample + e);
        y(i) = dropout_keeps(key, threshold, counter) ? x(i) * scale : T(0);
      });
}

// y[B, local] = r + mask(branch) / (1 - p): a residual branch's dropout fused with the residual add.
template <class T>
void dropout_residual_add(const Vec<T>& y, const Vec<T>& r, const Vec<T>& branch, const DropoutMask& m, int samples) {
  const uint64_t key = m.key, threshold = m.threshold();
  const int64_t local = m.local, per_sample = m.per_sample, base = m.first_sample * m.per_sample + m.offset;
  const T scale = T(1) / (T(1) - T(m.p));
  Kokkos::parallel_for(
      "strata::dropout::residual_add", range(size_t(samples) * size_t(local)), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t b = i / local, e = i - b * local;
        const uint64_t counter = uint64_t(base + b * per_sample + e);
        y(i) = r(i) + (dropout_keeps(key, threshold, counter) ? branch(i) * scale : T(0));
      });
}

// Attention probabilities: the sample's elements are [heads_total, T, T] (query, key); this rank holds heads
// [head_offset, head_offset + local heads). Site key and rate as in DropoutMask (per_sample, offset, local unused).
struct AttentionDropout {
  DropoutMask mask;
  int heads_total = 0, head_offset = 0;
  bool active() const { return mask.active(); }
};

// One query tile of sequence b: probs[H, rows, keys] (queries first .. first + rows - 1 of a sequence of seq) in
// place: probs = mask(probs) / (1 - p).
template <class T>
void dropout_attention_tile(const Vec<T>& probs, const AttentionDropout& d, int b, int heads, int rows, int keys,
                            int first, int seq) {
  const uint64_t key = d.mask.key, threshold = d.mask.threshold();
  const uint64_t sample = uint64_t(d.mask.first_sample + b), heads_total = uint64_t(d.heads_total);
  const uint64_t head_offset = uint64_t(d.head_offset), T_ = uint64_t(seq);
  const T scale = T(1) / (T(1) - T(d.mask.p));
  Kokkos::parallel_for(
      "strata::dropout::attention_tile", range(size_t(heads) * rows * keys), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t h = i / (int64_t(rows) * keys), rest = i - h * rows * keys;
        const int64_t r = rest / keys, j = rest - r * keys;
        const uint64_t counter =
            ((sample * heads_total + head_offset + uint64_t(h)) * T_ + uint64_t(first + r)) * T_ + uint64_t(j);
        probs(i) = dropout_keeps(key, threshold, counter) ? probs(i) * scale : T(0);
      });
}

}  // namespace strata
