#pragma once
// On-the-fly image augmentation in the data-loading thread. Every random draw is a pure function of
// (seed, sample), where `sample` is the sample's position in the global sample order (the "consumed samples"
// counter, growing across epochs): the augmented batch does not depend on how samples are split across ranks,
// microbatches or prefetch (DESIGN.md principle 4).
//
// Reproducibility contract (changing any of these changes every augmented sample; keep them stable):
//   key       = rng::make_key(seed, "strata::augment")
//   dy        = rng::bits(key, 4*sample + 0) % (2p + 1)      (p = crop_padding; counter 4*sample + 3 is reserved)
//   dx        = rng::bits(key, 4*sample + 1) % (2p + 1)
//   flip      = rng::bits(key, 4*sample + 2) & 1
//   noise_key = rng::make_key(seed, "strata::augment::noise")
//   noise[i]  = float(rng::normal(noise_key, sample*c*h*w + i) * noise_std), i the flat index in x[c, h, w]
#include <cstdint>

#include "data/image_ops.hpp"

namespace strata::data {

struct AugmentOptions {
  // Random crop with zero padding: pad each side by p zeros, take an h x w window at offset (dy, dx) in
  // [0, 2p]^2. Applied after normalization, so the padding is the dataset mean.
  int crop_padding = 0;
  bool flip = false;       // horizontal flip with probability 1/2
  float noise_std = 0.0f;  // additive Gaussian noise N(0, noise_std^2) on every element
  uint64_t seed = 0;

  bool any() const { return crop_padding > 0 || flip || noise_std > 0.0f; }
};

// Throws naming the field unless 0 <= crop_padding <= min(h, w) and noise_std is finite and >= 0.
void validate(const AugmentOptions& options, int h, int w);

// x[c, h, w] in place: (x - mean[c]) / std[c], in float64 then rounded. A channel with std == 0 is constant
// over the dataset (e.g. an unused channel): it is divided by 1 instead, so it becomes 0 rather than NaN.
void normalize_image(float* x, int c, int h, int w, const ChannelStats& stats);

// Augments one normalized image x[c, h, w] in place: crop (if crop_padding > 0), then flip (if flip), then noise
// (if noise_std > 0), with the draws above. scratch holds c*h*w floats (used by the crop only).
void augment_image(float* x, int c, int h, int w, const AugmentOptions& options, uint64_t sample, float* scratch);

}  // namespace strata::data
