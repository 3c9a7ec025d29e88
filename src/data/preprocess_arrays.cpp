#include "data/preprocess_arrays.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <type_traits>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "data/array_dataset.hpp"
#include "data/batch_sampler.hpp"
#include "data/image_ops.hpp"
#include "data/manifest.hpp"
#include "data/npy.hpp"
#include "data/rank_work.hpp"

namespace strata::data {
namespace fs = std::filesystem;

namespace {
std::string shape_text(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void check_options(const ArrayPreprocessOptions& o) {
  STRATA_CHECK(o.kind == "images" || o.kind == "sequences", "preprocess: kind '{}' is not 'images' or 'sequences'",
               o.kind);
  STRATA_CHECK(!o.output.empty(), "preprocess: no output directory given");
  STRATA_CHECK(!o.x_path.empty() && !o.y_path.empty(), "preprocess: both an x file and a y file are needed");
  STRATA_CHECK(o.val_fraction > 0 && o.val_fraction < 1, "preprocess: val_fraction is {}, expected 0 < f < 1",
               o.val_fraction);
  STRATA_CHECK(o.shards >= 1, "preprocess: shards is {}, expected >= 1", o.shards);
  STRATA_CHECK(o.num_classes >= 0, "preprocess: num_classes is {}, expected > 0 (or 0: max label + 1)", o.num_classes);
  STRATA_CHECK(o.resize_h >= 0 && o.resize_w >= 0 && (o.resize_h > 0) == (o.resize_w > 0),
               "preprocess: resize {}x{}: give both height and width > 0 (or neither)", o.resize_h, o.resize_w);
  STRATA_CHECK(o.kind == "images" || (o.resize_h == 0 && !o.channels_last),
               "preprocess: resize and channels_last apply to images only, not to {}", o.kind);
  STRATA_CHECK(!o.raw_x_dtype.empty() || o.raw_x_shape.empty(), "preprocess: raw_x_shape given without raw_x_dtype");
  STRATA_CHECK(!o.raw_y_dtype.empty() || o.raw_y_shape.empty(), "preprocess: raw_y_shape given without raw_y_dtype");
}

// A .npy file, or a raw one when raw_dtype is set (an empty raw_shape: 1-D when allowed, from the file size).
HostArray load_array(const std::string& path, const std::string& raw_dtype, std::vector<int64_t> raw_shape,
                     const char* what, bool infer_1d) {
  std::error_code ec;
  STRATA_CHECK(fs::is_regular_file(path, ec), "'{}': input {} file not found", path, what);
  if (raw_dtype.empty()) return read_npy(path);
  if (raw_shape.empty()) {
    STRATA_CHECK(infer_1d, "'{}': raw {} needs its shape (raw_{}_shape, e.g. N,C,H,W)", path, what, what);
    raw_shape = {int64_t(fs::file_size(path, ec) / dtype_itemsize(raw_dtype))};
  }
  return read_raw(path, raw_dtype, raw_shape);
}

// "[1, 2, 3]": the position of flat element `e` in an array of `shape`.
std::string unravel(int64_t e, const std::vector<int64_t>& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = e % shape[d];
    e /= shape[d];
  }
  return shape_text(idx);
}

// The inputs after validation, x still in the input layout.
struct Inputs {
  int64_t n = 0;
  int64_t c = 1, h = 0, w = 0;  // images: one input sample is [c, h, w] or [h, w, c] (channels_last)
  int64_t t = 0, f = 1;         // sequences: [t, f]
  int64_t in_elems = 0;         // elements of one input sample
  bool u8 = false;              // stored as uint8 (xb), else float32 (xf)
  std::vector<uint8_t> xb;
  std::vector<float> xf;
  std::vector<int32_t> y;                          // [n, label_elems]
  std::vector<int64_t> sample_shape, label_shape;  // as stored
  int64_t num_classes = 0;
};

Inputs load_inputs(const ArrayPreprocessOptions& o) {
  const bool images = o.kind == "images";
  HostArray x = load_array(o.x_path, o.raw_x_dtype, o.raw_x_shape, "x", false);
  HostArray ya = load_array(o.y_path, o.raw_y_dtype, o.raw_y_shape, "y", true);
  const auto& xs = x.shape;
  const auto& ys = ya.shape;
  if (images)
    STRATA_CHECK(xs.size() == 3 || xs.size() == 4, "'{}': x has shape {} (rank {}); images need [N, H, W] or {}",
                 o.x_path, shape_text(xs), xs.size(), o.channels_last ? "[N, H, W, C]" : "[N, C, H, W]");
  else
    STRATA_CHECK(xs.size() == 2 || xs.size() == 3, "'{}': x has shape {} (rank {}); sequences need [N, T] or [N, T, F]",
                 o.x_path, shape_text(xs), xs.size());
  STRATA_CHECK(ys.size() == 1 || (!images && ys.size() == 2), "'{}': y has shape {} (rank {}); expected {}", o.y_path,
               shape_text(ys), ys.size(), images ? "[N] (one label per image)" : "[N] or [N, T] (one label per step)");
  STRATA_CHECK(xs[0] == ys[0], "x '{}' holds {} samples but y '{}' holds {} labels: x and y must have the same N",
               o.x_path, xs[0], o.y_path, ys[0]);
  for (auto d : xs)
    STRATA_CHECK(d > 0 && d < INT_MAX, "'{}': x has shape {}: every extent must be in [1, 2^31)", o.x_path,
                 shape_text(xs));
  Inputs in;
  in.n = xs[0];
  STRATA_CHECK(in.n >= 2, "'{}': {} sample(s); need at least 2 (one for train, one for val)", o.x_path, in.n);
  std::vector<int64_t> in_shape(xs.begin() + 1, xs.end());  // one input sample, for error messages
  if (images) {
    if (xs.size() == 3) {
      in.h = xs[1], in.w = xs[2];
    } else if (o.channels_last) {
      in.h = xs[1], in.w = xs[2], in.c = xs[3];
    } else {
      in.c = xs[1], in.h = xs[2], in.w = xs[3];
    }
    in.in_elems = in.c * in.h * in.w;
    const bool resize = o.resize_h > 0;
    in.sample_shape = {in.c, resize ? o.resize_h : in.h, resize ? o.resize_w : in.w};
  } else {
    in.t = xs[1];
    in.f = xs.size() == 3 ? xs[2] : 1;
    in.in_elems = in.t * in.f;
    in.sample_shape = {in.t, in.f};
    if (ys.size() == 2) {
      STRATA_CHECK(ys[1] == in.t, "'{}': y has shape {}, but x '{}' has T = {} steps: per-step labels need [N, {}]",
                   o.y_path, shape_text(ys), o.x_path, in.t, in.t);
      in.label_shape = {in.t};
    }
  }

  in.u8 = x.dtype == "uint8" && o.resize_h == 0;
  if (in.u8) {
    in.xb = std::move(x.bytes);
  } else {
    in.xf = to_float32(x, fmt::format("'{}': x", o.x_path));
    x.bytes = {};
    if (x.dtype == "float32" || x.dtype == "float64") {
      const int64_t bad = first_non_finite(in.xf.data(), int64_t(in.xf.size()));
      if (bad >= 0)
        STRATA_FAIL("'{}': sample {}: x element {} (index {} of the sample's {}) is {}{} (not finite)", o.x_path,
                    bad / in.in_elems, bad % in.in_elems, unravel(bad % in.in_elems, in_shape), shape_text(in_shape),
                    in.xf[size_t(bad)], x.dtype == "float64" ? " as float32" : "");
    }
  }

  in.y = to_int32(ya, fmt::format("'{}': y", o.y_path));
  const int64_t le = in.label_shape.empty() ? 1 : in.label_shape[0];
  auto where = [&](size_t i) {
    return le > 1 ? fmt::format("sample {} step {}", int64_t(i) / le, int64_t(i) % le) : fmt::format("sample {}", i);
  };
  int32_t max_label = 0;
  for (size_t i = 0; i < in.y.size(); ++i) {
    STRATA_CHECK(in.y[i] >= 0, "'{}': {}: label {} is negative (labels are class indices in [0, num_classes))",
                 o.y_path, where(i), in.y[i]);
    STRATA_CHECK(o.num_classes == 0 || in.y[i] < o.num_classes, "'{}': {}: label {} is outside [0, num_classes {})",
                 o.y_path, where(i), in.y[i], o.num_classes);
    max_label = std::max(max_label, in.y[i]);
  }
  in.num_classes = o.num_classes > 0 ? o.num_classes : int64_t{max_label} + 1;
  return in;
}

// Sample i of the input, in the stored layout ([C, H, W] after resize, or [T, F]).
void make_sample(const Inputs& in, const ArrayPreprocessOptions& o, int64_t i, uint8_t* out) {
  const uint8_t* src = in.xb.data() + i * in.in_elems;
  if (o.channels_last) {  // [h, w, c] -> [c, h, w]
    const int64_t plane = in.h * in.w;
    for (int64_t k = 0; k < plane; ++k)
      for (int64_t ch = 0; ch < in.c; ++ch) out[ch * plane + k] = src[k * in.c + ch];
  } else {
    std::memcpy(out, src, size_t(in.in_elems));
  }
}
void make_sample(const Inputs& in, const ArrayPreprocessOptions& o, int64_t i, float* out,
                 std::vector<float>& scratch) {
  const float* src = in.xf.data() + i * in.in_elems;
  const bool resize = o.resize_h > 0;
  if (o.channels_last) {
    float* dst = resize ? (scratch.resize(size_t(in.in_elems)), scratch.data()) : out;
    nhwc_to_nchw(src, 1, int(in.h), int(in.w), int(in.c), dst);
    src = dst;
  }
  if (resize)
    resize_bilinear(src, int(in.c), int(in.h), int(in.w), out, o.resize_h, o.resize_w);
  else if (src != out)
    std::memcpy(out, src, sizeof(float) * size_t(in.in_elems));
}

// Per-channel statistics of one shard: out[0] = values per channel, out[1 + c] = sum, out[1 + C + c] = sum of squared
// deviations from the shard's own mean. x[n, outer, inner]; images: channel = outer index; sequences: inner index.
template <class X>
void shard_stats(const X* x, int64_t n, int64_t outer, int64_t inner, bool channel_outer, double* out) {
  const int64_t C = channel_outer ? outer : inner, per = n * outer * inner / C;
  std::vector<double> sum(size_t(C), 0.0), m2(size_t(C), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t b = 0; b < inner; ++b) sum[size_t(channel_outer ? a : b)] += double(x[(i * outer + a) * inner + b]);
  std::vector<double> mean(static_cast<size_t>(C), 0.0);
  for (int64_t c = 0; c < C; ++c) mean[size_t(c)] = sum[size_t(c)] / double(per);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t b = 0; b < inner; ++b) {
        const size_t c = size_t(channel_outer ? a : b);
        const double d = double(x[(i * outer + a) * inner + b]) - mean[c];
        m2[c] += d * d;
      }
  out[0] = double(per);
  for (int64_t c = 0; c < C; ++c) {
    out[1 + c] = sum[size_t(c)];
    out[1 + C + c] = m2[size_t(c)];
  }
}

struct SplitPlan {
  std::string name;
  std::vector<int64_t> index;  // input sample of each split position, ascending
};

// Writes the shards of `split` owned by this rank (k % P == me), filling counts[k], sums[k] and, for train, the
// statistics block of shard k.
template <class X>
void write_owned_shards(const Inputs& in, const ArrayPreprocessOptions& o, const DatasetManifest& m,
                        const SplitPlan& split, int P, int me, std::vector<uint64_t>& counts,
                        std::vector<uint64_t>& sums, double* stats, Progress& progress, int64_t& done) {
  const int64_t n = int64_t(split.index.size()), se = m.sample_elems(), le = m.label_elems();
  const bool images = m.kind == "images";
  const int64_t C = images ? m.sample_shape[0] : m.sample_shape[1];
  std::vector<X> x;
  std::vector<int32_t> y;
  std::vector<float> scratch;
  for (int k = me; k < o.shards; k += P) {
    const auto [b, e] = block_range(n, o.shards, k);
    x.resize(size_t((e - b) * se));
    y.resize(size_t((e - b) * le));
    for (int64_t j = b; j < e; ++j) {
      const int64_t i = split.index[size_t(j)];
      if constexpr (std::is_same_v<X, uint8_t>)
        make_sample(in, o, i, x.data() + (j - b) * se);
      else
        make_sample(in, o, i, x.data() + (j - b) * se, scratch);
      std::copy_n(in.y.data() + i * le, le, y.data() + (j - b) * le);
    }
    const auto entry = write_array_shard<X>(o.output, fmt::format("{}-{:05d}.h5", split.name, k), split.name, m,
                                            x.data(), y.data(), e - b);
    counts[size_t(k)] = uint64_t(entry.count);
    sums[size_t(k)] = entry.xxh64;
    if (stats) {
      const int64_t outer = images ? C : m.sample_shape[0], inner = se / outer;
      shard_stats(x.data(), e - b, outer, inner, images, stats + size_t(k) * size_t(1 + 2 * C));
    }
    done += e - b;
    progress.update(done);
  }
}
}  // namespace

ArrayPreprocessReport preprocess_arrays(const ArrayPreprocessOptions& o, MPI_Comm comm) {
  int P = 1, me = 0;
  STRATA_MPI(MPI_Comm_size(comm, &P));
  STRATA_MPI(MPI_Comm_rank(comm, &me));
  Progress clock("preprocess", "samples", 0, false);
  Inputs in;
  // Every rank reads and checks everything, so all of them fail with the same message.
  run_on_all_ranks(comm, "preprocess", [&] {
    check_options(o);
    in = load_inputs(o);
  });
  const int64_t N = in.n;

  // Val = the first n_val entries of a seeded permutation; both splits keep input order.
  const int64_t n_val = std::clamp<int64_t>(std::llround(double(N) * o.val_fraction), 1, N - 1);
  std::vector<char> is_val(size_t(N), 0);
  const auto order = seeded_permutation(N, o.seed, /*stream=*/0);
  for (int64_t i = 0; i < n_val; ++i) is_val[size_t(order[size_t(i)])] = 1;
  SplitPlan train{"train", {}}, val{"val", {}};
  for (int64_t i = 0; i < N; ++i) (is_val[size_t(i)] ? val : train).index.push_back(i);

  DatasetManifest m;
  m.kind = o.kind;
  m.dtype = in.u8 ? "uint8" : "float32";
  m.sample_shape = in.sample_shape;
  m.label_shape = in.label_shape;
  m.num_classes = in.num_classes;
  const int64_t C = o.kind == "images" ? m.sample_shape[0] : m.sample_shape[1];
  const size_t block = size_t(1 + 2 * C);  // statistics of one train shard

  std::vector<uint64_t> counts[2], sums[2];
  std::vector<double> stats(size_t(o.shards) * block, 0.0);
  run_on_all_ranks(comm, "preprocess", [&] {
    for (const auto* s : {&train, &val})
      STRATA_CHECK(int64_t(s->index.size()) >= o.shards,
                   "'{}': the {} split has {} samples (of {}, val_fraction {}), too few for {} shards of at least 1 "
                   "sample; use fewer shards",
                   o.output, s->name, s->index.size(), N, o.val_fraction, o.shards);
    if (me == 0) {
      std::error_code ec;
      fs::create_directories(o.output, ec);
      STRATA_CHECK(!ec, "'{}': cannot create dataset directory: {}", o.output, ec.message());
    }
  });
  // The directory exists on every rank now (rank 0 created it before the agreement above).
  int64_t mine = 0;
  for (int k = me; k < o.shards; k += P)
    for (const auto* s : {&train, &val}) {
      const auto [b, e] = block_range(int64_t(s->index.size()), o.shards, k);
      mine += e - b;
    }
  Progress progress(fmt::format("preprocess {} (rank 0 of {}): writing shards", o.kind, P), "samples", mine,
                    o.progress && me == 0);
  int64_t done = 0;
  run_on_all_ranks(comm, "preprocess", [&] {
    for (int s = 0; s < 2; ++s) {
      const SplitPlan& split = s == 0 ? train : val;
      counts[s].assign(size_t(o.shards), 0);
      sums[s].assign(size_t(o.shards), 0);
      double* st = s == 0 ? stats.data() : nullptr;
      if (in.u8)
        write_owned_shards<uint8_t>(in, o, m, split, P, me, counts[s], sums[s], st, progress, done);
      else
        write_owned_shards<float>(in, o, m, split, P, me, counts[s], sums[s], st, progress, done);
    }
    progress.finish();
  });
  in = Inputs{};
  // Each entry was filled by its one owner, the others hold zeros: the sums are the owners' values exactly.
  for (int s = 0; s < 2; ++s) {
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, counts[s].data(), o.shards, MPI_UINT64_T, MPI_SUM, comm));
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, sums[s].data(), o.shards, MPI_UINT64_T, MPI_SUM, comm));
  }
  STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, stats.data(), int(stats.size()), MPI_DOUBLE, MPI_SUM, comm));

  // Combine the shards' statistics in shard order (the same arithmetic on every rank, for any number of ranks).
  m.mean.assign(size_t(C), 0.0);
  m.std.assign(size_t(C), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    double total = 0, sum = 0;
    for (int k = 0; k < o.shards; ++k) {
      total += stats[size_t(k) * block];
      sum += stats[size_t(k) * block + 1 + size_t(c)];
    }
    const double mean = sum / total;
    double m2 = 0;
    for (int k = 0; k < o.shards; ++k) {
      const double* st = stats.data() + size_t(k) * block;
      const double d = st[1 + c] / st[0] - mean;
      m2 += st[1 + C + c] + st[0] * d * d;
    }
    m.mean[size_t(c)] = mean;
    m.std[size_t(c)] = std::sqrt(m2 / total);
  }
  for (int s = 0; s < 2; ++s) {
    const std::string name = s == 0 ? "train" : "val";
    for (int k = 0; k < o.shards; ++k)
      m.splits[name].push_back(
          {fmt::format("{}-{:05d}.h5", name, k), int64_t(counts[s][size_t(k)]), sums[s][size_t(k)]});
  }
  // Every shard is on disk (each owner wrote before the reductions above): the manifest goes last.
  run_on_all_ranks(comm, "preprocess", [&] {
    if (me == 0) write_manifest(o.output, m);
  });

  ArrayPreprocessReport r;
  r.samples = N;
  r.train_samples = N - n_val;
  r.val_samples = n_val;
  r.num_classes = m.num_classes;
  r.sample_shape = m.sample_shape;
  r.dtype = m.dtype;
  r.mean = m.mean;
  r.std = m.std;
  r.seconds = clock.elapsed_s();
  return r;
}

}  // namespace strata::data
