#pragma once
// Host-side image operations for the data-loading thread: dataset statistics, layout change, resizing and a
// finiteness scan. Plain loops over contiguous float32 (no Kokkos: they run beside the training kernels).
#include <cstdint>
#include <vector>

namespace strata::data {

// Per-channel mean and population standard deviation (divide by the count), accumulated in float64.
struct ChannelStats {
  std::vector<double> mean, std;
};

// x[n, c, h, w]. Two passes in float64 (mean, then squared deviations), so a large offset does not cancel the
// variance as sum(x^2) - n*mean^2 would. Throws if n*h*w == 0.
ChannelStats channel_stats(const float* x, int64_t n, int c, int h, int w);

// in[n, h, w, c] -> out[n, c, h, w]. in and out must not overlap.
void nhwc_to_nchw(const float* in, int64_t n, int h, int w, int c, float* out);

// in[c, h, w] -> out[c, oh, ow]: bilinear, align_corners=false, no antialiasing; the formula of
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) without scale_factor:
//   src = max((dst + 0.5) * in_size / out_size - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in_size - 1),
//   out = (1 - l) * in[i0] + l * in[i1] with l = src - i0, applied along rows and columns.
// Coordinates and sums are in float64 (torch uses float32 for float input, so results agree to ~1 ulp).
// oh == h && ow == w is an exact copy. in and out must not overlap.
void resize_bilinear(const float* in, int c, int h, int w, float* out, int oh, int ow);

// Index of the first NaN or +-Inf in x[0, n), or -1 if all are finite.
int64_t first_non_finite(const float* x, int64_t n);

}  // namespace strata::data
