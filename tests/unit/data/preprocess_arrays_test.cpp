#include "data/preprocess_arrays.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.hpp"
#include "data/array_dataset.hpp"
#include "data/batch_sampler.hpp"
#include "data/image_ops.hpp"
#include "data/manifest.hpp"
#include "data/npy.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
namespace fs = std::filesystem;
using strata::testing::expect_error;
using strata::testing::TempDir;

template <class T>
HostArray make_array(const std::string& dtype, std::vector<int64_t> shape, const std::vector<T>& v) {
  HostArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes.resize(v.size() * sizeof(T));
  std::memcpy(a.bytes.data(), v.data(), a.bytes.size());
  EXPECT_EQ(a.numel(), int64_t(v.size()));
  return a;
}

std::vector<uint8_t> u8_values(int64_t n) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = uint8_t((i * 37 + (i / 7) * 101 + 5) % 256);
  return v;
}
std::vector<float> float_values(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * (float((i * 29) % 113) - 40.0f) + 0.125f * float(i % 5);
  return v;
}
// Labels 0..classes-1 in a scrambled order; every class appears when n >= classes.
std::vector<int64_t> label_values(int64_t n, int64_t classes) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = (i * 5 + 2) % classes;
  return v;
}

std::string save(const TempDir& tmp, const std::string& name, const HostArray& a) {
  const std::string path = tmp.file(name);
  write_npy(path, a);
  return path;
}

// The split rule of preprocess_arrays.hpp, written out: val = the first n_val of seeded_permutation(N, seed, 0).
struct ExpectedSplit {
  std::vector<int64_t> train, val;
};
ExpectedSplit expected_split(int64_t n, double frac, uint64_t seed) {
  const int64_t n_val = std::clamp<int64_t>(std::llround(double(n) * frac), 1, n - 1);
  const auto perm = seeded_permutation(n, seed, 0);
  std::vector<char> is_val(size_t(n), 0);
  for (int64_t i = 0; i < n_val; ++i) is_val[size_t(perm[size_t(i)])] = 1;
  ExpectedSplit s;
  for (int64_t i = 0; i < n; ++i) (is_val[size_t(i)] ? s.val : s.train).push_back(i);
  return s;
}

struct SplitData {
  int64_t n = 0;
  std::vector<float> x;
  std::vector<int32_t> y;
};
SplitData read_all(const std::string& dir, const std::string& split) {
  ArraySplit s(dir, split);
  SplitData d;
  d.n = s.num_samples();
  std::vector<int64_t> idx(size_t(d.n));
  for (int64_t i = 0; i < d.n; ++i) idx[size_t(i)] = i;
  d.x.resize(size_t(d.n * s.sample_elems()));
  d.y.resize(size_t(d.n * s.label_elems()));
  s.read(idx.data(), d.n, d.x.data(), d.y.data());
  return d;
}

// Mean and population std per channel in float64, two passes. x[n, C, plane] (channel_outer) or x[n, plane, C].
void reference_stats(const std::vector<std::vector<float>>& samples, int64_t C, bool channel_outer,
                     std::vector<double>& mean, std::vector<double>& sd) {
  mean.assign(size_t(C), 0.0);
  sd.assign(size_t(C), 0.0);
  std::vector<double> count(size_t(C), 0.0);
  auto channel = [&](size_t e, size_t se) { return channel_outer ? e / (se / size_t(C)) : e % size_t(C); };
  for (const auto& s : samples)
    for (size_t e = 0; e < s.size(); ++e) {
      mean[channel(e, s.size())] += s[e];
      count[channel(e, s.size())] += 1;
    }
  for (int64_t c = 0; c < C; ++c) mean[size_t(c)] /= count[size_t(c)];
  for (const auto& s : samples)
    for (size_t e = 0; e < s.size(); ++e) {
      const double d = s[e] - mean[channel(e, s.size())];
      sd[channel(e, s.size())] += d * d;
    }
  for (int64_t c = 0; c < C; ++c) sd[size_t(c)] = std::sqrt(sd[size_t(c)] / count[size_t(c)]);
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t c = 0; c < got.size(); ++c)
    EXPECT_NEAR(got[c], want[c], 1e-12 * std::max(1.0, std::abs(want[c]))) << what << "[" << c << "]";
}

bool has_manifest(const std::string& dir) { return fs::exists(fs::path(dir) / kManifestName); }

// The shards' counts and checksums: equal lists mean byte-identical stored samples and labels.
std::vector<std::pair<int64_t, uint64_t>> shard_list(const DatasetManifest& m, const std::string& split) {
  std::vector<std::pair<int64_t, uint64_t>> out;
  for (const auto& e : m.splits.at(split)) out.push_back({e.count, e.xxh64});
  return out;
}

// 50 uint8 images [3, 5, 4] with 7 classes, as .npy files.
struct ImageInputs {
  TempDir tmp;
  static constexpr int64_t N = 50, C = 3, H = 5, W = 4, K = 7;
  std::vector<uint8_t> x = u8_values(N * C * H * W);
  std::vector<int64_t> y = label_values(N, K);
  std::string x_path = save(tmp, "x.npy", make_array("uint8", {N, C, H, W}, x));
  std::string y_path = save(tmp, "y.npy", make_array("int64", {N}, y));
  ArrayPreprocessOptions options(const std::string& out_name, int shards = 3) const {
    ArrayPreprocessOptions o;
    o.x_path = x_path;
    o.y_path = y_path;
    o.output = tmp.file(out_name);
    o.val_fraction = 0.2;
    o.seed = 7;
    o.shards = shards;
    return o;
  }
  std::vector<float> sample(int64_t i) const {  // as float, NCHW
    const int64_t se = C * H * W;
    return std::vector<float>(x.begin() + i * se, x.begin() + (i + 1) * se);
  }
};

TEST(PreprocessArrays, Uint8ImagesRoundTrip) {
  ImageInputs in;
  const auto o = in.options("ds");
  const auto r = preprocess_arrays(o);
  EXPECT_EQ(r.samples, 50);
  EXPECT_EQ(r.val_samples, 10);
  EXPECT_EQ(r.train_samples, 40);
  EXPECT_EQ(r.num_classes, 7);
  EXPECT_EQ(r.dtype, "uint8");
  EXPECT_EQ(r.sample_shape, (std::vector<int64_t>{3, 5, 4}));

  const auto m = read_manifest(o.output);
  EXPECT_EQ(m.kind, "images");
  EXPECT_EQ(m.dtype, "uint8");
  EXPECT_EQ(m.sample_shape, (std::vector<int64_t>{3, 5, 4}));
  EXPECT_TRUE(m.label_shape.empty());
  EXPECT_EQ(m.num_classes, 7);
  ASSERT_EQ(m.splits.at("train").size(), 3u);
  ASSERT_EQ(m.splits.at("val").size(), 3u);
  const std::vector<int64_t> train_counts{13, 13, 14}, val_counts{3, 3, 4};  // [n*k/3, n*(k+1)/3)
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(m.splits.at("train")[k].file, fmt::format("train-{:05d}.h5", k));
    EXPECT_EQ(m.splits.at("val")[k].file, fmt::format("val-{:05d}.h5", k));
    EXPECT_EQ(m.splits.at("train")[k].count, train_counts[k]);
    EXPECT_EQ(m.splits.at("val")[k].count, val_counts[k]);
  }

  // Split membership follows the seeded permutation; samples come back exactly, in input order.
  const auto want = expected_split(50, 0.2, 7);
  ASSERT_EQ(want.val.size(), 10u);
  for (const auto& [name, index] : {std::pair{"train", want.train}, std::pair{"val", want.val}}) {
    const auto d = read_all(o.output, name);
    ASSERT_EQ(d.n, int64_t(index.size())) << name;
    for (size_t j = 0; j < index.size(); ++j) {
      const auto s = in.sample(index[j]);
      ASSERT_TRUE(std::equal(s.begin(), s.end(), d.x.begin() + j * s.size())) << name << " position " << j;
      ASSERT_EQ(d.y[j], in.y[size_t(index[j])]) << name << " position " << j;
    }
  }

  std::vector<std::vector<float>> train;
  for (auto i : want.train) train.push_back(in.sample(i));
  std::vector<double> mean, sd;
  reference_stats(train, 3, true, mean, sd);
  expect_close(m.mean, mean, "mean");
  expect_close(m.std, sd, "std");
  expect_close(r.mean, mean, "report mean");
  expect_close(r.std, sd, "report std");
  EXPECT_GT(sd[0], 10.0);  // a real spread, not a degenerate constant
}

TEST(PreprocessArrays, ChannelsLastGivesTheSameDataset) {
  ImageInputs in;
  const int64_t N = in.N, C = in.C, H = in.H, W = in.W;
  std::vector<uint8_t> nhwc(in.x.size());
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < H * W; ++p) nhwc[size_t((i * H * W + p) * C + c)] = in.x[size_t((i * C + c) * H * W + p)];
  auto o_last = in.options("last");
  o_last.x_path = save(in.tmp, "x_nhwc.npy", make_array("uint8", {N, H, W, C}, nhwc));
  o_last.channels_last = true;
  preprocess_arrays(in.options("first"));
  preprocess_arrays(o_last);
  const auto a = read_manifest(in.tmp.file("first")), b = read_manifest(in.tmp.file("last"));
  EXPECT_EQ(b.sample_shape, (std::vector<int64_t>{3, 5, 4}));
  EXPECT_EQ(b.dtype, "uint8");
  EXPECT_EQ(shard_list(a, "train"), shard_list(b, "train"));
  EXPECT_EQ(shard_list(a, "val"), shard_list(b, "val"));
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_EQ(read_all(in.tmp.file("first"), "val").x, read_all(in.tmp.file("last"), "val").x);
}

TEST(PreprocessArrays, ResizeStoresFloat32OfTheNewShape) {
  ImageInputs in;
  auto o = in.options("resized", 2);
  o.resize_h = 7;
  o.resize_w = 3;
  const auto r = preprocess_arrays(o);
  EXPECT_EQ(r.dtype, "float32");
  const auto m = read_manifest(o.output);
  EXPECT_EQ(m.dtype, "float32");
  EXPECT_EQ(m.sample_shape, (std::vector<int64_t>{3, 7, 3}));
  const auto want = expected_split(50, 0.2, 7);
  std::vector<std::vector<float>> resized_train;
  for (const auto& [name, index] : {std::pair{"train", want.train}, std::pair{"val", want.val}}) {
    const auto d = read_all(o.output, name);
    ASSERT_EQ(d.n, int64_t(index.size()));
    for (size_t j = 0; j < index.size(); ++j) {
      const auto s = in.sample(index[j]);
      std::vector<float> ref(3 * 7 * 3);
      resize_bilinear(s.data(), 3, 5, 4, ref.data(), 7, 3);
      for (size_t e = 0; e < ref.size(); ++e)
        ASSERT_EQ(d.x[j * ref.size() + e], ref[e]) << name << " " << j << " " << e;
      if (std::string(name) == "train") resized_train.push_back(ref);
    }
  }
  std::vector<double> mean, sd;
  reference_stats(resized_train, 3, true, mean, sd);
  expect_close(m.mean, mean, "mean");
  expect_close(m.std, sd, "std");
}

TEST(PreprocessArrays, FloatChannelsLastWithResizeMatchesImageOps) {
  TempDir tmp;
  const int64_t N = 8, H = 4, W = 6, C = 2;
  const auto x = float_values(N * H * W * C, 0.5f);
  ArrayPreprocessOptions o;
  o.x_path = save(tmp, "x.npy", make_array("float32", {N, H, W, C}, x));
  o.y_path = save(tmp, "y.npy", make_array("int64", {N}, label_values(N, 3)));
  o.output = tmp.file("ds");
  o.channels_last = true;
  o.resize_h = 3;
  o.resize_w = 5;
  o.val_fraction = 0.25;
  preprocess_arrays(o);
  const auto want = expected_split(N, 0.25, 0);
  const auto d = read_all(o.output, "val");
  ASSERT_EQ(d.n, 2);
  for (size_t j = 0; j < 2; ++j) {
    std::vector<float> nchw(size_t(H * W * C)), ref(size_t(C * 3 * 5));
    nhwc_to_nchw(x.data() + want.val[j] * H * W * C, 1, H, W, C, nchw.data());
    resize_bilinear(nchw.data(), C, H, W, ref.data(), 3, 5);
    for (size_t e = 0; e < ref.size(); ++e) ASSERT_EQ(d.x[j * ref.size() + e], ref[e]) << j << " " << e;
  }
}

TEST(PreprocessArrays, RawInputEqualsNpyInput) {
  ImageInputs in;
  auto o_raw = in.options("raw");
  o_raw.x_path = in.tmp.file("x.u8");
  o_raw.y_path = in.tmp.file("y.i64");
  std::ofstream(o_raw.x_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(in.x.data()), std::streamsize(in.x.size()));
  std::ofstream(o_raw.y_path, std::ios::binary)
      .write(reinterpret_cast<const char*>(in.y.data()), std::streamsize(in.y.size() * sizeof(int64_t)));
  o_raw.raw_x_dtype = "uint8";
  o_raw.raw_x_shape = {in.N, in.C, in.H, in.W};
  o_raw.raw_y_dtype = "int64";  // no shape: 1-D from the file size
  preprocess_arrays(in.options("npy"));
  preprocess_arrays(o_raw);
  const auto a = read_manifest(in.tmp.file("npy")), b = read_manifest(o_raw.output);
  EXPECT_EQ(a.sample_shape, b.sample_shape);
  EXPECT_EQ(a.num_classes, b.num_classes);
  EXPECT_EQ(shard_list(a, "train"), shard_list(b, "train"));
  EXPECT_EQ(shard_list(a, "val"), shard_list(b, "val"));
  EXPECT_EQ(a.mean, b.mean);

  o_raw.raw_x_shape = {in.N, in.C, in.H, in.W + 1};  // does not match the file size
  expect_error([&] { preprocess_arrays(o_raw); }, {o_raw.x_path});
}

TEST(PreprocessArrays, SequencesWithPerStepLabels) {
  TempDir tmp;
  const int64_t N = 30, T = 6, F = 2, K = 4;
  const auto x = float_values(N * T * F, 0.01f);
  const auto y = label_values(N * T, K);
  ArrayPreprocessOptions o;
  o.kind = "sequences";
  o.x_path = save(tmp, "x.npy", make_array("float32", {N, T, F}, x));
  o.y_path = save(tmp, "y.npy", make_array("int64", {N, T}, y));
  o.output = tmp.file("seq");
  o.val_fraction = 0.3;
  o.seed = 3;
  o.shards = 2;
  const auto r = preprocess_arrays(o);
  EXPECT_EQ(r.val_samples, 9);
  const auto m = read_manifest(o.output);
  EXPECT_EQ(m.kind, "sequences");
  EXPECT_EQ(m.dtype, "float32");
  EXPECT_EQ(m.sample_shape, (std::vector<int64_t>{T, F}));
  EXPECT_EQ(m.label_shape, (std::vector<int64_t>{T}));
  EXPECT_EQ(m.num_classes, K);
  const auto want = expected_split(N, 0.3, 3);
  std::vector<std::vector<float>> train;
  for (const auto& [name, index] : {std::pair{"train", want.train}, std::pair{"val", want.val}}) {
    const auto d = read_all(o.output, name);
    ASSERT_EQ(d.n, int64_t(index.size()));
    for (size_t j = 0; j < index.size(); ++j) {
      const int64_t i = index[j];
      for (int64_t e = 0; e < T * F; ++e) ASSERT_EQ(d.x[j * T * F + e], x[size_t(i * T * F + e)]) << name << " " << j;
      for (int64_t t = 0; t < T; ++t) ASSERT_EQ(d.y[j * T + t], y[size_t(i * T + t)]) << name << " " << j;
      if (std::string(name) == "train") train.emplace_back(x.begin() + i * T * F, x.begin() + (i + 1) * T * F);
    }
  }
  std::vector<double> mean, sd;
  reference_stats(train, F, /*channel_outer=*/false, mean, sd);  // per feature F
  expect_close(m.mean, mean, "mean");
  expect_close(m.std, sd, "std");
  EXPECT_NE(mean[0], mean[1]);
}

TEST(PreprocessArrays, SequencesOfScalarsGetOneFeature) {
  TempDir tmp;
  const int64_t N = 10, T = 5;
  std::vector<int16_t> x(size_t(N * T));
  for (size_t i = 0; i < x.size(); ++i) x[i] = int16_t(int(i * 97 % 401) - 200);
  ArrayPreprocessOptions o;
  o.kind = "sequences";
  o.x_path = save(tmp, "x.npy", make_array("int16", {N, T}, x));
  o.y_path = save(tmp, "y.npy", make_array("int32", {N}, std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}));
  o.output = tmp.file("seq");
  o.num_classes = 10;  // more than the labels use
  preprocess_arrays(o);
  const auto m = read_manifest(o.output);
  EXPECT_EQ(m.dtype, "float32");
  EXPECT_EQ(m.sample_shape, (std::vector<int64_t>{T, 1}));
  EXPECT_TRUE(m.label_shape.empty());
  EXPECT_EQ(m.num_classes, 10);
  const auto want = expected_split(N, 0.1, 0);
  const auto d = read_all(o.output, "train");
  ASSERT_EQ(d.n, 9);
  for (size_t j = 0; j < 9; ++j)
    for (int64_t t = 0; t < T; ++t) ASSERT_EQ(d.x[j * T + t], float(x[size_t(want.train[j] * T + t)]));
}

// --- errors: each names the input file and the sample, and no manifest is left behind.

struct SmallFloatImages {
  TempDir tmp;
  static constexpr int64_t N = 6;
  std::vector<float> x = float_values(N * 6, 1.0f);
  std::vector<int64_t> y = label_values(N, 3);
  ArrayPreprocessOptions options() const {
    ArrayPreprocessOptions o;
    o.x_path = save(tmp, "x.npy", make_array("float32", {N, 1, 2, 3}, x));
    o.y_path = save(tmp, "y.npy", make_array("int64", {N}, y));
    o.output = tmp.file("ds");
    o.val_fraction = 0.3;
    return o;
  }
};

TEST(PreprocessArrays, BaselineOfTheErrorCasesSucceeds) {
  SmallFloatImages in;
  const auto o = in.options();
  EXPECT_EQ(preprocess_arrays(o).samples, 6);
  EXPECT_TRUE(has_manifest(o.output));
}

TEST(PreprocessArrays, NaNInXIsRejectedNamingFileSampleAndElement) {
  SmallFloatImages in;
  in.x[4 * 6 + 5] = std::numeric_limits<float>::quiet_NaN();
  const auto o = in.options();
  expect_error([&] { preprocess_arrays(o); }, {o.x_path, "sample 4", "element 5", "[0, 1, 2]", "nan", "not finite"});
  EXPECT_FALSE(has_manifest(o.output));
}

TEST(PreprocessArrays, Float64OverflowingFloat32IsRejected) {
  SmallFloatImages in;
  auto o = in.options();
  std::vector<double> xd(in.x.begin(), in.x.end());
  xd[2 * 6 + 1] = 1e300;
  o.x_path = save(in.tmp, "x64.npy", make_array("float64", {in.N, 1, 2, 3}, xd));
  expect_error([&] { preprocess_arrays(o); }, {o.x_path, "sample 2", "element 1", "inf as float32"});
}

TEST(PreprocessArrays, LabelOutOfRangeIsRejected) {
  SmallFloatImages in;
  auto o = in.options();
  o.num_classes = 3;
  in.y[2] = 3;
  o.y_path = save(in.tmp, "y_bad.npy", make_array("int64", {in.N}, in.y));
  expect_error([&] { preprocess_arrays(o); }, {o.y_path, "sample 2", "label 3 is outside [0, num_classes 3)"});
  EXPECT_FALSE(has_manifest(o.output));
}

TEST(PreprocessArrays, NegativeLabelIsRejected) {
  SmallFloatImages in;
  auto o = in.options();
  in.y[5] = -1;
  o.y_path = save(in.tmp, "y_neg.npy", make_array("int64", {in.N}, in.y));
  expect_error([&] { preprocess_arrays(o); }, {o.y_path, "sample 5", "label -1 is negative"});
}

TEST(PreprocessArrays, BadPerStepLabelNamesSampleAndStep) {
  TempDir tmp;
  std::vector<int64_t> y = label_values(4 * 3, 2);
  y[3 * 3 + 2] = -2;
  ArrayPreprocessOptions o;
  o.kind = "sequences";
  o.x_path = save(tmp, "x.npy", make_array("float32", {4, 3}, float_values(12, 1.0f)));
  o.y_path = save(tmp, "y.npy", make_array("int64", {4, 3}, y));
  o.output = tmp.file("ds");
  expect_error([&] { preprocess_arrays(o); }, {o.y_path, "sample 3 step 2", "label -2"});
}

TEST(PreprocessArrays, FloatLabelsAreRejected) {
  SmallFloatImages in;
  auto o = in.options();
  o.y_path = save(in.tmp, "y_float.npy", make_array("float32", {in.N}, std::vector<float>(in.N, 1.0f)));
  expect_error([&] { preprocess_arrays(o); }, {o.y_path, "expected an integer dtype"});
}

TEST(PreprocessArrays, SampleCountMismatchNamesBothFiles) {
  SmallFloatImages in;
  auto o = in.options();
  o.y_path = save(in.tmp, "y5.npy", make_array("int64", {5}, label_values(5, 3)));
  expect_error([&] { preprocess_arrays(o); }, {o.x_path, o.y_path, "6 samples", "5 labels"});
}

TEST(PreprocessArrays, TooManyShardsForTheSplitIsRejected) {
  SmallFloatImages in;
  auto o = in.options();  // 6 samples, val_fraction 0.3: val holds 2
  o.shards = 3;
  expect_error([&] { preprocess_arrays(o); }, {o.output, "val split has 2 samples", "3 shards"});
  EXPECT_FALSE(has_manifest(o.output));
  o.shards = 2;
  EXPECT_EQ(preprocess_arrays(o).val_samples, 2);
}

TEST(PreprocessArrays, WrongRankOfXIsRejected) {
  SmallFloatImages in;
  auto o = in.options();
  o.x_path = save(in.tmp, "x2d.npy", make_array("float32", {in.N, 6}, in.x));
  expect_error([&] { preprocess_arrays(o); },
               {o.x_path, "shape [6, 6] (rank 2)", "images need [N, H, W] or [N, C, H, W]"});
  o.kind = "sequences";
  o.x_path = save(in.tmp, "x4d.npy", make_array("float32", {in.N, 1, 2, 3}, in.x));
  expect_error([&] { preprocess_arrays(o); }, {o.x_path, "(rank 4)", "sequences need [N, T] or [N, T, F]"});
  EXPECT_FALSE(has_manifest(o.output));
}

// One process with different shard counts (and MPI_COMM_WORLD of this one-process test): the same splits.
TEST(PreprocessArrays, ShardCountDoesNotChangeTheSplits) {
  ImageInputs in;
  const auto one = in.options("one", 1);
  auto four = in.options("four", 4);
  const auto r1 = preprocess_arrays(one, MPI_COMM_SELF);
  const auto r4 = preprocess_arrays(four, MPI_COMM_SELF);
  EXPECT_EQ(read_manifest(four.output).splits.at("train").size(), 4u);
  for (const char* split : {"train", "val"}) {
    const auto a = read_all(one.output, split), b = read_all(four.output, split);
    EXPECT_EQ(a.n, b.n) << split;
    EXPECT_EQ(a.x, b.x) << split;
    EXPECT_EQ(a.y, b.y) << split;
  }
  expect_close(r4.mean, r1.mean, "mean");
  expect_close(r4.std, r1.std, "std");
  // Rewriting the same directory with another shard count replaces the manifest; the result reads the same.
  four.shards = 2;
  preprocess_arrays(four, MPI_COMM_WORLD);
  EXPECT_EQ(read_manifest(four.output).splits.at("val").size(), 2u);
  EXPECT_EQ(read_all(one.output, "val").x, read_all(four.output, "val").x);
  EXPECT_EQ(read_all(one.output, "train").y, read_all(four.output, "train").y);
}

}  // namespace
}  // namespace strata::data
