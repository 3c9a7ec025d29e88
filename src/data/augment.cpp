#include "data/augment.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace strata::data {
namespace {

// x[c, h, w] <- window (dy, dx) of x zero-padded by p on every side.
void crop_padded(float* x, int c, int h, int w, int p, int dy, int dx, float* scratch) {
  std::fill(scratch, scratch + static_cast<int64_t>(c) * h * w, 0.0f);
  // Output row y reads input row y + dy - p; only rows and columns inside the image carry data.
  const int oy = dy - p, ox = dx - p;
  const int y_begin = std::max(0, -oy), y_end = std::min(h, h - oy);
  const int x_begin = std::max(0, -ox), x_end = std::min(w, w - ox);
  if (y_begin < y_end && x_begin < x_end) {
    for (int ch = 0; ch < c; ++ch) {
      const int64_t plane = static_cast<int64_t>(ch) * h * w;
      for (int y = y_begin; y < y_end; ++y)
        std::memcpy(scratch + plane + static_cast<int64_t>(y) * w + x_begin,
                    x + plane + static_cast<int64_t>(y + oy) * w + x_begin + ox,
                    sizeof(float) * static_cast<size_t>(x_end - x_begin));
    }
  }
  std::memcpy(x, scratch, sizeof(float) * static_cast<size_t>(c) * h * w);
}

void flip_horizontal(float* x, int c, int h, int w) {
  for (int64_t row = 0; row < static_cast<int64_t>(c) * h; ++row) std::reverse(x + row * w, x + row * w + w);
}

}  // namespace

void validate(const AugmentOptions& options, int h, int w) {
  STRATA_CHECK(options.crop_padding >= 0 && options.crop_padding <= std::min(h, w),
               "augment crop_padding must be in [0, min(h, w)] = [0, {}], got {}", std::min(h, w),
               options.crop_padding);
  STRATA_CHECK(std::isfinite(options.noise_std) && options.noise_std >= 0.0f,
               "augment noise_std must be finite and >= 0, got {}", options.noise_std);
}

void normalize_image(float* x, int c, int h, int w, const ChannelStats& stats) {
  STRATA_CHECK(c >= 0 && h >= 0 && w >= 0, "normalize_image: bad shape [{}, {}, {}]", c, h, w);
  STRATA_CHECK(stats.mean.size() == static_cast<size_t>(c) && stats.std.size() == static_cast<size_t>(c),
               "normalize_image: stats have {} means and {} stds for {} channels", stats.mean.size(), stats.std.size(),
               c);
  const int64_t plane = static_cast<int64_t>(h) * w;
  for (int ch = 0; ch < c; ++ch) {
    const double mean = stats.mean[ch], sd = stats.std[ch] == 0.0 ? 1.0 : stats.std[ch];
    float* p = x + ch * plane;
    for (int64_t k = 0; k < plane; ++k) p[k] = static_cast<float>((p[k] - mean) / sd);
  }
}

void augment_image(float* x, int c, int h, int w, const AugmentOptions& options, uint64_t sample, float* scratch) {
  STRATA_CHECK(c >= 0 && h > 0 && w > 0, "augment_image: bad shape [{}, {}, {}]", c, h, w);
  validate(options, h, w);
  if (options.crop_padding > 0 || options.flip) {
    const uint64_t key = rng::make_key(options.seed, "strata::augment");
    if (options.crop_padding > 0) {
      STRATA_CHECK(scratch != nullptr, "augment_image: crop needs a scratch buffer of c*h*w floats");
      const uint64_t span = 2 * static_cast<uint64_t>(options.crop_padding) + 1;
      const int dy = static_cast<int>(rng::bits(key, 4 * sample + 0) % span);
      const int dx = static_cast<int>(rng::bits(key, 4 * sample + 1) % span);
      crop_padded(x, c, h, w, options.crop_padding, dy, dx, scratch);
    }
    if (options.flip && (rng::bits(key, 4 * sample + 2) & 1)) flip_horizontal(x, c, h, w);
  }
  if (options.noise_std > 0.0f) {
    const uint64_t noise_key = rng::make_key(options.seed, "strata::augment::noise");
    const uint64_t numel = static_cast<uint64_t>(c) * h * w;
    for (uint64_t i = 0; i < numel; ++i)
      x[i] += static_cast<float>(rng::normal(noise_key, sample * numel + i) * options.noise_std);
  }
}

}  // namespace strata::data
