#include "data/image_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"

namespace strata::data {
namespace {

// One axis of a bilinear resize: for each output index, the two source indices and the weight of the second.
struct Taps {
  std::vector<int> i0, i1;
  std::vector<double> l1;
};

Taps bilinear_taps(int in_size, int out_size) {
  Taps t;
  const double scale = static_cast<double>(in_size) / out_size;
  for (int d = 0; d < out_size; ++d) {
    const double src = std::max((d + 0.5) * scale - 0.5, 0.0);
    const int i0 = std::min(static_cast<int>(src), in_size - 1);  // src >= 0, so the cast floors
    t.i0.push_back(i0);
    t.i1.push_back(std::min(i0 + 1, in_size - 1));
    t.l1.push_back(src - i0);
  }
  return t;
}

}  // namespace

ChannelStats channel_stats(const float* x, int64_t n, int c, int h, int w) {
  STRATA_CHECK(n >= 0 && c > 0 && h >= 0 && w >= 0, "channel_stats: bad shape [{}, {}, {}, {}]", n, c, h, w);
  const int64_t plane = int64_t{h} * w, count = n * plane;
  STRATA_CHECK(count > 0, "channel_stats: no pixels (shape [{}, {}, {}, {}])", n, c, h, w);
  ChannelStats s{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (int ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float* p = x + (i * c + ch) * plane;
      for (int64_t k = 0; k < plane; ++k) sum += p[k];
    }
    const double mean = sum / static_cast<double>(count);
    double squares = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float* p = x + (i * c + ch) * plane;
      for (int64_t k = 0; k < plane; ++k) squares += (p[k] - mean) * (p[k] - mean);
    }
    s.mean[ch] = mean;
    s.std[ch] = std::sqrt(squares / static_cast<double>(count));
  }
  return s;
}

void nhwc_to_nchw(const float* in, int64_t n, int h, int w, int c, float* out) {
  STRATA_CHECK(n >= 0 && h >= 0 && w >= 0 && c >= 0, "nhwc_to_nchw: bad shape [{}, {}, {}, {}]", n, h, w, c);
  const int64_t plane = int64_t{h} * w, image = plane * c;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < plane; ++k)
      for (int ch = 0; ch < c; ++ch) out[i * image + ch * plane + k] = in[i * image + k * c + ch];
}

void resize_bilinear(const float* in, int c, int h, int w, float* out, int oh, int ow) {
  STRATA_CHECK(c >= 0 && h > 0 && w > 0 && oh > 0 && ow > 0, "resize_bilinear: bad sizes c={} {}x{} -> {}x{}", c, h, w,
               oh, ow);
  if (oh == h && ow == w) {  // exact, even next to non-finite pixels (0 * Inf would give NaN)
    std::memcpy(out, in, sizeof(float) * static_cast<size_t>(c) * h * w);
    return;
  }
  const Taps rows = bilinear_taps(h, oh), cols = bilinear_taps(w, ow);
  for (int ch = 0; ch < c; ++ch) {
    const float* src = in + static_cast<int64_t>(ch) * h * w;
    float* dst = out + static_cast<int64_t>(ch) * oh * ow;
    for (int y = 0; y < oh; ++y) {
      const float* r0 = src + static_cast<int64_t>(rows.i0[y]) * w;
      const float* r1 = src + static_cast<int64_t>(rows.i1[y]) * w;
      const double ly = rows.l1[y];
      for (int x = 0; x < ow; ++x) {
        const int x0 = cols.i0[x], x1 = cols.i1[x];
        const double lx = cols.l1[x];
        const double top = (1.0 - lx) * r0[x0] + lx * r0[x1];
        const double bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
        dst[static_cast<int64_t>(y) * ow + x] = static_cast<float>((1.0 - ly) * top + ly * bottom);
      }
    }
  }
}

int64_t first_non_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

}  // namespace strata::data
