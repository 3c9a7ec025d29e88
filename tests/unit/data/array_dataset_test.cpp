#include "data/array_dataset.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/manifest.hpp"
#include "data/sharded_tokens.hpp"
#include "data/token_writer.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
namespace fs = std::filesystem;
using strata::testing::expect_error;
using strata::testing::TempDir;

DatasetManifest array_manifest(const std::string& kind, const std::string& dtype, std::vector<int64_t> sample_shape,
                               std::vector<int64_t> label_shape, int64_t num_classes) {
  DatasetManifest m;
  m.kind = kind;
  m.dtype = dtype;
  m.sample_shape = std::move(sample_shape);
  m.label_shape = std::move(label_shape);
  m.num_classes = num_classes;
  return m;
}

std::string shard_name(const std::string& split, size_t k) { return fmt::format("{}-{:05d}.h5", split, k); }

// Writes x/y of one split as shards of the given sizes (in order) and records them in m.
template <class X>
void write_split(const std::string& dir, DatasetManifest& m, const std::string& split, const std::vector<X>& x,
                 const std::vector<int32_t>& y, const std::vector<int64_t>& counts) {
  fs::create_directories(dir);
  const int64_t se = m.sample_elems(), le = m.label_elems();
  int64_t off = 0;
  m.splits[split].clear();
  for (size_t k = 0; k < counts.size(); ++k) {
    m.splits[split].push_back(
        write_array_shard<X>(dir, shard_name(split, k), split, m, x.data() + off * se, y.data() + off * le, counts[k]));
    off += counts[k];
  }
  ASSERT_EQ(size_t(off * se), x.size());
}

// A shard written with the HDF5 helpers directly (bypassing write_array_shard's checks).
template <class X>
void write_raw_shard(const std::string& path, const std::vector<hsize_t>& xshape, const X* x,
                     const std::vector<hsize_t>& yshape, const int32_t* y) {
  auto f = h5::create_file(path);
  h5::write_dataset<X>(f, "x", xshape, x);
  h5::write_dataset<int32_t>(f, "y", yshape, y);
}

template <class X>
uint64_t checksum_of(const std::vector<X>& x, const std::vector<int32_t>& y) {
  StreamChecksum sum;
  sum.update(x.data(), x.size() * sizeof(X));
  sum.update(y.data(), y.size() * sizeof(int32_t));
  return sum.digest();
}

std::vector<uint8_t> u8_values(int64_t n, uint32_t salt) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = uint8_t((i * 37 + salt * 11 + 200) % 256);
  v[1] = 255;  // the extremes: 255 must come back as 255.0, not as a signed -1
  v[2] = 0;
  return v;
}
std::vector<float> float_values(int64_t n, float offset) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = offset + 0.25f * float((i * 13) % 97) - 7.5f;  // exact in float
  return v;
}
std::vector<int32_t> labels(int64_t n, int32_t classes, int32_t salt) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = int32_t((i * 3 + salt) % classes);
  return v;
}

// Reads `indices` through ArraySplit and compares every value with the written arrays (X converted to float).
template <class X>
void expect_reads(const ArraySplit& s, const std::vector<int64_t>& indices, const std::vector<X>& x,
                  const std::vector<int32_t>& y) {
  const int64_t se = s.sample_elems(), le = s.label_elems();
  std::vector<float> gx(indices.size() * size_t(se), -1.0f);
  std::vector<int32_t> gy(indices.size() * size_t(le), -1);
  s.read(indices.data(), int64_t(indices.size()), gx.data(), gy.data());
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    for (int64_t e = 0; e < se; ++e)
      ASSERT_EQ(gx[k * size_t(se) + size_t(e)], float(x[size_t(i * se + e)])) << "sample " << i << " element " << e;
    for (int64_t e = 0; e < le; ++e)
      ASSERT_EQ(gy[k * size_t(le) + size_t(e)], y[size_t(i * le + e)]) << "sample " << i << " label " << e;
  }
}

const std::vector<int64_t> kScattered{9, 0, 4, 4, 7, 3, 0, 5, 2, 9, 6};  // unsorted, repeated, crosses every shard

TEST(ArrayDataset, Uint8ImagesRoundTripAcrossThreeShards) {
  TempDir tmp;
  const std::string dir = tmp.file("ds");
  auto m = array_manifest("images", "uint8", {2, 3, 2}, {}, 5);
  const auto x = u8_values(10 * 12, 1), xv = u8_values(2 * 12, 2);
  const auto y = labels(10, 5, 0), yv = labels(2, 5, 1);
  write_split(dir, m, "train", x, y, {3, 4, 3});
  write_split(dir, m, "val", xv, yv, {2});
  write_manifest(dir, m);

  ArraySplit train(dir, "train");
  EXPECT_EQ(train.num_samples(), 10);
  EXPECT_EQ(train.sample_elems(), 12);
  EXPECT_EQ(train.label_elems(), 1);
  EXPECT_EQ(train.manifest().dtype, "uint8");
  expect_reads(train, kScattered, x, y);
  ArraySplit val(dir, "val");
  EXPECT_EQ(val.num_samples(), 2);
  expect_reads(val, {1, 0, 1}, xv, yv);
}

TEST(ArrayDataset, Float32ImagesRoundTripAcrossThreeShards) {
  TempDir tmp;
  const std::string dir = tmp.file("ds");
  auto m = array_manifest("images", "float32", {3, 2, 2}, {}, 4);
  const auto x = float_values(10 * 12, 0.0f), xv = float_values(3 * 12, 100.0f);
  const auto y = labels(10, 4, 2), yv = labels(3, 4, 3);
  write_split(dir, m, "train", x, y, {4, 2, 4});
  write_split(dir, m, "val", xv, yv, {1, 2});
  write_manifest(dir, m);

  ArraySplit train(dir, "train");
  EXPECT_EQ(train.num_samples(), 10);
  expect_reads(train, kScattered, x, y);
  ArraySplit val(dir, "val");
  EXPECT_EQ(val.num_samples(), 3);
  expect_reads(val, {2, 0, 2, 1}, xv, yv);
}

TEST(ArrayDataset, SequencesWithPerStepLabelsRoundTrip) {
  TempDir tmp;
  const std::string dir = tmp.file("ds");
  auto m = array_manifest("sequences", "float32", {4, 3}, {4}, 6);
  const auto x = float_values(10 * 12, -2.0f), xv = float_values(2 * 12, 5.0f);
  const auto y = labels(10 * 4, 6, 0), yv = labels(2 * 4, 6, 5);
  write_split(dir, m, "train", x, y, {5, 1, 4});
  write_split(dir, m, "val", xv, yv, {2});
  write_manifest(dir, m);

  ArraySplit train(dir, "train");
  EXPECT_EQ(train.manifest().kind, "sequences");
  EXPECT_EQ(train.sample_elems(), 12);
  EXPECT_EQ(train.label_elems(), 4);
  expect_reads(train, kScattered, x, y);
  expect_reads(ArraySplit(dir, "val"), {1, 1, 0}, xv, yv);
}

// A float32 images dataset: train in shards of 3 and 4 samples, val in one of 2 samples. 5 classes.
struct Fixture {
  TempDir tmp;
  std::string dir = tmp.file("ds");
  DatasetManifest m = array_manifest("images", "float32", {1, 2, 3}, {}, 5);
  std::vector<float> x = float_values(7 * 6, 0.0f), xv = float_values(2 * 6, 1.0f);
  std::vector<int32_t> y = labels(7, 5, 0), yv = labels(2, 5, 1);
  Fixture() {
    write_split(dir, m, "train", x, y, {3, 4});
    write_split(dir, m, "val", xv, yv, {2});
    write_manifest(dir, m);
  }
  std::string shard(const std::string& split, size_t k) const {
    return (fs::path(dir) / shard_name(split, k)).string();
  }
  std::string manifest_path() const { return (fs::path(dir) / kManifestName).string(); }
};

TEST(ArrayDataset, FixtureOpensCleanly) {  // the baseline every corruption below starts from
  Fixture f;
  EXPECT_EQ(ArraySplit(f.dir, "train").num_samples(), 7);
  EXPECT_EQ(ArraySplit(f.dir, "val").num_samples(), 2);
}

TEST(ArrayDataset, TruncatedShardIsRejectedNamingIt) {
  Fixture f;
  const auto path = f.shard("train", 1);
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_error([&] { ArraySplit(f.dir, "train"); }, {path, "cannot open HDF5 file"});
  EXPECT_EQ(ArraySplit(f.dir, "val").num_samples(), 2);  // the other split is untouched
}

TEST(ArrayDataset, ChecksumMismatchIsRejectedNamingShardAndField) {
  Fixture f;
  auto x2 = f.x;
  x2[3 * 6 + 5] += 1.0f;  // second shard, first sample, last element
  write_array_shard<float>(f.dir, shard_name("train", 1), "train", f.m, x2.data() + 3 * 6, f.y.data() + 3, 4);
  expect_error([&] { ArraySplit(f.dir, "train"); },
               {f.manifest_path(), "checksum mismatch", f.shard("train", 1), "splits.train[1].xxh64",
                checksum_hex(f.m.splits.at("train")[1].xxh64)});
}

TEST(ArrayDataset, VerifyFalseSkipsTheChecksumSoACorruptShardOpens) {
  Fixture f;
  auto x2 = f.x;
  x2[3 * 6 + 5] = 42.0f;
  write_array_shard<float>(f.dir, shard_name("train", 1), "train", f.m, x2.data() + 3 * 6, f.y.data() + 3, 4);
  ArraySplit unchecked(f.dir, "train", /*verify=*/false);
  EXPECT_EQ(unchecked.num_samples(), 7);
  expect_reads(unchecked, {3, 0}, x2, f.y);  // the corrupt value is what comes back
  expect_error([&] { ArraySplit(f.dir, "train", /*verify=*/true); }, {"checksum mismatch"});
}

TEST(ArrayDataset, ManifestCountDisagreeingWithShardIsRejected) {
  Fixture f;
  auto m = f.m;
  m.splits["train"][0].count = 4;  // the shard holds 3
  write_manifest(f.dir, m);
  expect_error([&] { ArraySplit(f.dir, "train"); },
               {f.shard("train", 0), "x has shape [3, 1, 2, 3]", "4 samples", "manifest and shard disagree"});
}

TEST(ArrayDataset, WrongDtypeIsRejected) {
  Fixture f;
  std::vector<double> xd(f.x.begin(), f.x.begin() + 3 * 6);
  write_raw_shard<double>(f.shard("train", 0), {3, 1, 2, 3}, xd.data(), {3}, f.y.data());
  expect_error([&] { ArraySplit(f.dir, "train"); },
               {f.shard("train", 0), "x stores float64", "field 'dtype' says 'float32'", "wrong dtype"});
}

TEST(ArrayDataset, NaNInAFloatShardIsRejectedNamingTheSample) {
  Fixture f;
  std::vector<float> x2(f.x.begin() + 3 * 6, f.x.end());
  std::vector<int32_t> y2(f.y.begin() + 3, f.y.end());
  x2[1 * 6 + 4] = std::numeric_limits<float>::quiet_NaN();  // shard row 1 = train sample 4, element 4
  write_raw_shard<float>(f.shard("train", 1), {4, 1, 2, 3}, x2.data(), {4}, y2.data());
  auto m = f.m;
  m.splits["train"][1].xxh64 = checksum_of(x2, y2);  // the checksum alone would not catch it
  write_manifest(f.dir, m);
  expect_error([&] { ArraySplit(f.dir, "train"); },
               {f.shard("train", 1), "train sample 4 (shard row 1)", "x element 4", "not finite"});
  EXPECT_EQ(ArraySplit(f.dir, "train", /*verify=*/false).num_samples(), 7);
}

TEST(ArrayDataset, LabelOutOfRangeIsRejectedNamingTheSample) {
  Fixture f;
  auto y2 = f.yv;
  y2[1] = 5;  // num_classes is 5
  write_raw_shard<float>(f.shard("val", 0), {2, 1, 2, 3}, f.xv.data(), {2}, y2.data());
  auto m = f.m;
  m.splits["val"][0].xxh64 = checksum_of(f.xv, y2);
  write_manifest(f.dir, m);
  expect_error([&] { ArraySplit(f.dir, "val"); },
               {f.shard("val", 0), "val sample 1 (shard row 1)", "label 5 is outside [0, num_classes 5)"});
}

TEST(ArrayDataset, EmptySplitIsRejected) {
  Fixture f;
  auto m = f.m;
  m.splits["val"][0].count = 0;  // the split's only shard holds no samples
  write_manifest(f.dir, m);
  expect_error([&] { ArraySplit(f.dir, "train"); }, {f.manifest_path(), "split 'val' is empty"});
}

TEST(ArrayDataset, MissingShardFileIsRejected) {
  Fixture f;
  fs::remove(f.shard("val", 0));
  expect_error([&] { ArraySplit(f.dir, "val"); }, {f.manifest_path(), f.shard("val", 0), "splits.val[0]", "not found"});
}

TEST(ArrayDataset, TokenManifestIsNotAnArrayDataset) {
  TempDir tmp;
  const std::string dir = tmp.file("tokens");
  std::vector<uint32_t> train(40), val(20);
  for (size_t i = 0; i < train.size(); ++i) train[i] = uint32_t(i % 250);
  for (size_t i = 0; i < val.size(); ++i) val[i] = uint32_t(i % 7);
  write_sharded_tokens(dir, TokenDatasetMeta{257, 256, "byte"}, train, val, 2);
  expect_error([&] { ArraySplit(dir, "train"); },
               {(fs::path(dir) / kManifestName).string(), "field 'kind' is 'tokens'", "'images' or 'sequences'"});
}

}  // namespace
}  // namespace strata::data
