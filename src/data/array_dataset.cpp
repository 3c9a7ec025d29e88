#include "data/array_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <type_traits>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "data/shard_reads.hpp"

namespace strata::data {
namespace fs = std::filesystem;

namespace {
std::vector<hsize_t> with_rows(int64_t n, const std::vector<int64_t>& shape) {
  std::vector<hsize_t> dims{hsize_t(n)};
  for (auto d : shape) dims.push_back(hsize_t(d));
  return dims;
}
std::string shape_string(const std::vector<hsize_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// Checksums hash bytes as little-endian; this build targets little-endian hosts only.
static_assert(sizeof(float) == 4 && sizeof(int32_t) == 4);
}  // namespace

template <class X>
ShardEntry write_array_shard(const std::string& dir, const std::string& file, const std::string& split,
                             const DatasetManifest& m, const X* x, const int32_t* y, int64_t n) {
  static_assert(std::is_same_v<X, uint8_t> || std::is_same_v<X, float>);
  const std::string path = (fs::path(dir) / file).string();
  const char* want = std::is_same_v<X, uint8_t> ? "uint8" : "float32";
  STRATA_CHECK(m.dtype == want, "{}: writing {} samples into a dataset whose dtype is '{}'", path, want, m.dtype);
  const int64_t se = m.sample_elems(), le = m.label_elems();
  for (int64_t i = 0; i < n * le; ++i)
    STRATA_CHECK(y[i] >= 0 && y[i] < m.num_classes, "{}: {} sample {}: label {} is outside [0, num_classes {})", path,
                 split, i / le, y[i], m.num_classes);
  if constexpr (std::is_same_v<X, float>) {
    for (int64_t i = 0; i < n * se; ++i)
      STRATA_CHECK(std::isfinite(x[i]), "{}: {} sample {}: value {} at element {} is not finite", path, split, i / se,
                   x[i], i % se);
  }
  write_atomically(path, [&](const std::string& tmp) {
    auto f = h5::create_file(tmp);
    h5::write_attr(f, "format", std::string(kArrayShardFormat));
    h5::write_attr(f, "format_version", kDatasetFormatVersion);
    h5::write_attr(f, "kind", m.kind);
    h5::write_attr(f, "split", split);
    h5::write_dataset<X>(f, "x", with_rows(n, m.sample_shape), x);
    h5::write_dataset<int32_t>(f, "y", with_rows(n, m.label_shape), y);
  });
  ShardEntry e;
  e.file = file;
  e.count = n;
  StreamChecksum sum;
  sum.update(x, size_t(n * se) * sizeof(X));
  sum.update(y, size_t(n * le) * sizeof(int32_t));
  e.xxh64 = sum.digest();
  return e;
}
template ShardEntry write_array_shard<uint8_t>(const std::string&, const std::string&, const std::string&,
                                               const DatasetManifest&, const uint8_t*, const int32_t*, int64_t);
template ShardEntry write_array_shard<float>(const std::string&, const std::string&, const std::string&,
                                             const DatasetManifest&, const float*, const int32_t*, int64_t);

ArraySplit::ArraySplit(const std::string& dir, const std::string& split, bool verify,
                       const std::function<void(int64_t)>& on_verified)
    : dir_(dir), split_(split), manifest_path_((fs::path(dir) / kManifestName).string()) {
  STRATA_CHECK(split == "train" || split == "val", "{}: split '{}' is not 'train' or 'val'", dir, split);
  manifest_ = read_manifest(dir);
  STRATA_CHECK(!manifest_.is_tokens(),
               "{}: field 'kind' is 'tokens', expected an array dataset ('images' or "
               "'sequences') here",
               manifest_path_);
  sample_elems_ = manifest_.sample_elems();
  label_elems_ = manifest_.label_elems();
  const auto& entries = manifest_.splits.at(split);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const std::string field = fmt::format("splits.{}[{}]", split, i);
    Shard s;
    s.path = (fs::path(dir) / e.file).string();
    std::error_code ec;
    STRATA_CHECK(fs::is_regular_file(s.path, ec), "{}: shard file '{}' ({}) not found", manifest_path_, s.path, field);
    s.bytes = shard_bytes(s.path);
    s.file = h5::open_file(s.path);  // a truncated or overwritten file fails here, naming it
    for (const char* name : {"x", "y"})
      STRATA_CHECK(h5::exists(s.file, name), "{}: dataset '{}' is missing (an array shard holds 'x' and 'y')", s.path,
                   name);
    const auto xdims = h5::dataset_shape(s.file, "x", s.path), ydims = h5::dataset_shape(s.file, "y", s.path);
    const auto want_x = with_rows(e.count, manifest_.sample_shape), want_y = with_rows(e.count, manifest_.label_shape);
    STRATA_CHECK(xdims == want_x, "{}: x has shape {}, but {} says {} samples of shape [{}] ({}: {})", s.path,
                 shape_string(xdims), manifest_path_, e.count, fmt::join(manifest_.sample_shape, ", "), field,
                 "manifest and shard disagree");
    STRATA_CHECK(ydims == want_y, "{}: y has shape {}, expected {} from {} ({})", s.path, shape_string(ydims),
                 shape_string(want_y), manifest_path_, field);
    s.x = h5::Handle(STRATA_H5(H5Dopen2(s.file, "x", H5P_DEFAULT)), H5Dclose);
    s.y = h5::Handle(STRATA_H5(H5Dopen2(s.file, "y", H5P_DEFAULT)), H5Dclose);
    const std::string xtype = h5::element_type_name(s.x), ytype = h5::element_type_name(s.y);
    STRATA_CHECK(xtype == manifest_.dtype, "{}: x stores {}, but {} field 'dtype' says '{}' (wrong dtype)", s.path,
                 xtype, manifest_path_, manifest_.dtype);
    STRATA_CHECK(ytype.rfind("int", 0) == 0 || ytype.rfind("uint", 0) == 0,
                 "{}: y stores {}, expected integer class labels (wrong dtype)", s.path, ytype);
    s.start = num_samples_;
    s.count = e.count;
    num_samples_ += e.count;
    if (verify) {
      verify_shard(s, e, i);
      if (on_verified) on_verified(e.count);
    }
    shards_.push_back(std::move(s));
  }
}

void ArraySplit::verify_shard(const Shard& s, const ShardEntry& e, size_t index) const {
  // Rows in blocks of ~4 MiB: the checksum covers x (as stored) then y (as int32).
  const int64_t rows = std::max<int64_t>(1, (int64_t(4) << 20) / std::max<int64_t>(1, sample_elems_ * 4));
  StreamChecksum sum;
  std::vector<hsize_t> block;
  std::vector<float> xf;
  std::vector<uint8_t> xb;
  for (int64_t r = 0; r < s.count; r += rows) {
    const int64_t n = std::min(rows, s.count - r);
    block.resize(size_t(n));
    for (int64_t k = 0; k < n; ++k) block[size_t(k)] = hsize_t(r + k);
    if (manifest_.dtype == "uint8") {
      xb.resize(size_t(n * sample_elems_));
      h5::read_rows<uint8_t>(s.x, block, xb.data());
      sum.update(xb.data(), xb.size());
    } else {
      xf.resize(size_t(n * sample_elems_));
      h5::read_rows<float>(s.x, block, xf.data());
      for (size_t i = 0; i < xf.size(); ++i)
        STRATA_CHECK(std::isfinite(xf[i]), "{}: {} sample {} (shard row {}): x element {} is {} (not finite)", s.path,
                     split_, s.start + r + int64_t(i) / sample_elems_, r + int64_t(i) / sample_elems_,
                     int64_t(i) % sample_elems_, xf[i]);
      sum.update(xf.data(), xf.size() * sizeof(float));
    }
  }
  std::vector<int32_t> y(size_t(s.count * label_elems_));
  std::vector<hsize_t> all(size_t(s.count));
  for (int64_t k = 0; k < s.count; ++k) all[size_t(k)] = hsize_t(k);
  h5::read_rows<int32_t>(s.y, all, y.data());
  for (size_t i = 0; i < y.size(); ++i)
    STRATA_CHECK(y[i] >= 0 && y[i] < manifest_.num_classes,
                 "{}: {} sample {} (shard row {}): label {} is outside [0, num_classes {}) of {}", s.path, split_,
                 s.start + int64_t(i) / label_elems_, int64_t(i) / label_elems_, y[i], manifest_.num_classes,
                 manifest_path_);
  sum.update(y.data(), y.size() * sizeof(int32_t));
  const uint64_t got = sum.digest();
  STRATA_CHECK(got == e.xxh64,
               "{}: checksum mismatch: shard '{}' has xxh64 {}, manifest field 'splits.{}[{}].xxh64' says {} (shard "
               "corrupted or replaced)",
               manifest_path_, s.path, checksum_hex(got), split_, index, checksum_hex(e.xxh64));
}

void ArraySplit::select(std::vector<int64_t> members, const std::string& note) {
  for (int64_t m : members)
    STRATA_CHECK(m >= 0 && m < num_samples_, "{}: selected sample {} out of range [0, {})", describe(), m,
                 num_samples_);
  STRATA_CHECK(!members.empty(), "{}: an empty selection{}", describe(), note);
  selected_ = std::move(members);
  note_ = note;
}

std::vector<int32_t> ArraySplit::all_labels() const {
  std::vector<int32_t> labels(size_t(num_samples_ * label_elems_));
  for (const Shard& s : shards_) {
    if (s.count == 0) continue;
    std::vector<hsize_t> rows(size_t(s.count));
    for (int64_t r = 0; r < s.count; ++r) rows[size_t(r)] = hsize_t(r);
    h5::read_rows<int32_t>(s.y, rows, labels.data() + s.start * label_elems_);
  }
  return labels;
}

void ArraySplit::read(const int64_t* indices, int64_t n, float* x, int32_t* y) const {
  // Group the requested samples by shard, read each shard's (sorted, unique) rows in one call, then scatter.
  struct Want {
    int64_t row, out;
  };
  std::vector<std::vector<Want>> per_shard(shards_.size());
  for (int64_t k = 0; k < n; ++k) {
    STRATA_CHECK(indices[k] >= 0 && indices[k] < num_samples(), "{}: sample {} out of range [0, {})", describe(),
                 indices[k], num_samples());
    const int64_t g = selected_.empty() ? indices[k] : selected_[size_t(indices[k])];
    auto it =
        std::upper_bound(shards_.begin(), shards_.end(), g, [](int64_t v, const Shard& s) { return v < s.start; });
    size_t sh = size_t(std::distance(shards_.begin(), it)) - 1;
    while (shards_[sh].count == 0 || g >= shards_[sh].start + shards_[sh].count) ++sh;  // skip empty shards
    per_shard[sh].push_back({g - shards_[sh].start, k});
  }
  std::vector<hsize_t> rows;
  std::vector<float> xbuf;
  std::vector<int32_t> ybuf;
  for (size_t sh = 0; sh < shards_.size(); ++sh) {
    auto& want = per_shard[sh];
    if (want.empty()) continue;
    std::sort(want.begin(), want.end(), [](const Want& a, const Want& b) { return a.row < b.row; });
    rows.clear();
    for (const auto& w : want)
      if (rows.empty() || rows.back() != hsize_t(w.row)) rows.push_back(hsize_t(w.row));
    xbuf.resize(rows.size() * size_t(sample_elems_));
    ybuf.resize(rows.size() * size_t(label_elems_));
    read_shard(shards_[sh].path, shards_[sh].bytes, [&] {
      if (manifest_.dtype == "uint8") {  // read as stored (a converting read refills a 1 MiB buffer per call)
        thread_local std::vector<uint8_t> bytes;
        bytes.resize(xbuf.size());
        h5::read_rows<uint8_t>(shards_[sh].x, rows, bytes.data());
        std::copy(bytes.begin(), bytes.end(), xbuf.begin());
      } else {
        h5::read_rows<float>(shards_[sh].x, rows, xbuf.data());
      }
      h5::read_rows<int32_t>(shards_[sh].y, rows, ybuf.data());
    });
    size_t r = 0;
    for (const auto& w : want) {
      while (rows[r] != hsize_t(w.row)) ++r;
      std::copy_n(xbuf.data() + r * size_t(sample_elems_), sample_elems_, x + w.out * sample_elems_);
      std::copy_n(ybuf.data() + r * size_t(label_elems_), label_elems_, y + w.out * label_elems_);
    }
  }
}

}  // namespace strata::data
