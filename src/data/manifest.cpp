#include "data/manifest.hpp"

#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace strata::data {
namespace fs = std::filesystem;
using nlohmann::json;

StreamChecksum::StreamChecksum() : state_(XXH64_createState()) {
  STRATA_CHECK(state_ != nullptr, "XXH64_createState failed");
  XXH64_reset(static_cast<XXH64_state_t*>(state_), 0);
}
StreamChecksum::~StreamChecksum() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }

void StreamChecksum::update(const void* bytes, size_t n) {
  XXH64_update(static_cast<XXH64_state_t*>(state_), bytes, n);
}

void StreamChecksum::update_ids(const uint32_t* ids, size_t n) {
  constexpr size_t kBlock = 4096;
  unsigned char buf[kBlock * 4];
  for (size_t base = 0; base < n; base += kBlock) {
    const size_t m = std::min(kBlock, n - base);
    for (size_t i = 0; i < m; ++i) {
      const uint32_t v = ids[base + i];
      buf[4 * i] = static_cast<unsigned char>(v);
      buf[4 * i + 1] = static_cast<unsigned char>(v >> 8);
      buf[4 * i + 2] = static_cast<unsigned char>(v >> 16);
      buf[4 * i + 3] = static_cast<unsigned char>(v >> 24);
    }
    update(buf, m * 4);
  }
}

uint64_t StreamChecksum::digest() const { return XXH64_digest(static_cast<XXH64_state_t*>(state_)); }

uint64_t token_checksum(const std::vector<uint32_t>& ids) {
  StreamChecksum c;
  c.update_ids(ids.data(), ids.size());
  return c.digest();
}

uint64_t file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "'{}': cannot open", path);
  StreamChecksum c;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    c.update(buf.data(), size_t(in.gcount()));
  }
  STRATA_CHECK(!in.bad(), "'{}': read error", path);
  return c.digest();
}

int64_t DatasetManifest::sample_elems() const {
  int64_t n = 1;
  for (auto d : sample_shape) n *= d;
  return n;
}
int64_t DatasetManifest::label_elems() const {
  int64_t n = 1;
  for (auto d : label_shape) n *= d;
  return n;
}
int64_t DatasetManifest::total(const std::string& split) const {
  int64_t n = 0;
  auto it = splits.find(split);
  if (it != splits.end())
    for (const auto& e : it->second) n += e.count;
  return n;
}

std::string checksum_hex(uint64_t v) { return fmt::format("{:016x}", v); }

namespace {
const json& field(const json& obj, const std::string& name, const std::string& path, const std::string& where) {
  STRATA_CHECK(obj.is_object() && obj.contains(name), "{}: field '{}{}' is missing", path, where, name);
  return obj.at(name);
}
std::string get_string(const json& obj, const std::string& name, const std::string& path,
                       const std::string& where = "") {
  const json& v = field(obj, name, path, where);
  STRATA_CHECK(v.is_string(), "{}: field '{}{}' must be a string, got {}", path, where, name, v.dump());
  return v.get<std::string>();
}
int64_t get_int(const json& obj, const std::string& name, const std::string& path, const std::string& where = "") {
  const json& v = field(obj, name, path, where);
  STRATA_CHECK(v.is_number_integer(), "{}: field '{}{}' must be an integer, got {}", path, where, name, v.dump());
  return v.get<int64_t>();
}
}  // namespace

namespace {
std::vector<int64_t> get_shape(const json& obj, const std::string& name, const std::string& path) {
  const json& v = field(obj, name, path, "");
  STRATA_CHECK(v.is_array(), "{}: field '{}' must be an array of integers, got {}", path, name, v.dump());
  std::vector<int64_t> shape;
  for (const auto& d : v) {
    STRATA_CHECK(d.is_number_integer() && d.get<int64_t>() > 0, "{}: field '{}' must hold positive integers, got {}",
                 path, name, v.dump());
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}
std::vector<double> get_numbers(const json& obj, const std::string& name, const std::string& path,
                                const std::string& where) {
  const json& v = field(obj, name, path, where);
  STRATA_CHECK(v.is_array(), "{}: field '{}{}' must be an array of numbers", path, where, name);
  std::vector<double> out;
  for (const auto& d : v) {
    STRATA_CHECK(d.is_number() && std::isfinite(d.get<double>()), "{}: field '{}{}' must hold finite numbers, got {}",
                 path, where, name, v.dump());
    out.push_back(d.get<double>());
  }
  return out;
}
uint64_t get_hex(const json& obj, const std::string& name, const std::string& path, const std::string& where) {
  const std::string hex = get_string(obj, name, path, where);
  bool ok = hex.size() == 16 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  STRATA_CHECK(ok, "{}: field '{}{}' is '{}', expected 16 hex digits", path, where, name, hex);
  return std::stoull(hex, nullptr, 16);
}

void read_token_fields(const json& j, const std::string& path, DatasetManifest& m) {
  m.dtype = get_string(j, "dtype", path);
  STRATA_CHECK(m.dtype == "uint16" || m.dtype == "uint32", "{}: field 'dtype' is '{}', expected 'uint16' or 'uint32'",
               path, m.dtype);
  m.vocab_size = get_int(j, "vocab_size", path);
  STRATA_CHECK(m.vocab_size > 0, "{}: field 'vocab_size' is {}, expected > 0", path, m.vocab_size);
  m.eot_id = get_int(j, "eot_id", path);
  STRATA_CHECK(m.eot_id >= 0 && m.eot_id < m.vocab_size,
               "{}: field 'eot_id' is {}, expected 0 <= eot_id < vocab_size {}", path, m.eot_id, m.vocab_size);
  m.tokenizer = get_string(j, "tokenizer", path);
  STRATA_CHECK(!m.tokenizer.empty(), "{}: field 'tokenizer' is empty", path);
  if (j.contains("tokenizer_file")) {
    m.tokenizer_file = get_string(j, "tokenizer_file", path);
    STRATA_CHECK(fs::path(m.tokenizer_file).filename().string() == m.tokenizer_file,
                 "{}: field 'tokenizer_file' is '{}', expected a plain file name inside the dataset directory", path,
                 m.tokenizer_file);
    m.tokenizer_xxh64 = get_hex(j, "tokenizer_xxh64", path, "");
  }
  STRATA_CHECK(m.tokenizer != "bpe" || !m.tokenizer_file.empty(),
               "{}: field 'tokenizer_file' is missing: tokenizer 'bpe' needs its merges file", path);
}

void read_array_fields(const json& j, const std::string& path, DatasetManifest& m) {
  m.dtype = get_string(j, "dtype", path);
  STRATA_CHECK(m.dtype == "uint8" || m.dtype == "float32", "{}: field 'dtype' is '{}', expected 'uint8' or 'float32'",
               path, m.dtype);
  m.sample_shape = get_shape(j, "sample_shape", path);
  m.label_shape = get_shape(j, "label_shape", path);
  if (m.kind == "images") {
    STRATA_CHECK(m.sample_shape.size() == 3, "{}: field 'sample_shape' has {} dimensions, expected [C, H, W]", path,
                 m.sample_shape.size());
    STRATA_CHECK(m.label_shape.empty(), "{}: field 'label_shape' must be [] for images (one label per image)", path);
  } else {
    STRATA_CHECK(m.sample_shape.size() == 2, "{}: field 'sample_shape' has {} dimensions, expected [T, F]", path,
                 m.sample_shape.size());
    STRATA_CHECK(m.label_shape.empty() || (m.label_shape.size() == 1 && m.label_shape[0] == m.sample_shape[0]),
                 "{}: field 'label_shape' must be [] (one label per sequence) or [T] = [{}] (one per step)", path,
                 m.sample_shape[0]);
  }
  m.num_classes = get_int(j, "num_classes", path);
  STRATA_CHECK(m.num_classes > 0, "{}: field 'num_classes' is {}, expected > 0", path, m.num_classes);
  if (j.contains("normalization")) {
    const json& n = j.at("normalization");
    m.mean = get_numbers(n, "mean", path, "normalization.");
    m.std = get_numbers(n, "std", path, "normalization.");
    const size_t channels = m.kind == "images" ? size_t(m.sample_shape[0]) : size_t(m.sample_shape[1]);
    STRATA_CHECK(m.mean.size() == channels && m.std.size() == channels,
                 "{}: field 'normalization' needs {} means and stds (one per channel), got {} and {}", path, channels,
                 m.mean.size(), m.std.size());
    for (double s : m.std) STRATA_CHECK(s >= 0, "{}: field 'normalization.std' holds {}, expected >= 0", path, s);
  }
}
}  // namespace

DatasetManifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  std::error_code ec;
  STRATA_CHECK(fs::is_directory(dir, ec), "'{}': dataset directory not found", dir);
  STRATA_CHECK(fs::is_regular_file(path, ec),
               "'{}': manifest not found (a dataset directory needs {}; an interrupted writer leaves none)", path,
               kManifestName);
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "'{}': cannot open manifest", path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    STRATA_FAIL("{}: not valid JSON: {}", path, e.what());
  }
  STRATA_CHECK(j.is_object(), "{}: manifest must be a JSON object", path);
  const std::string format = get_string(j, "format", path);
  STRATA_CHECK(format == kDatasetFormat, "{}: field 'format' is '{}', expected '{}'", path, format, kDatasetFormat);
  const int64_t version = get_int(j, "format_version", path);
  STRATA_CHECK(version == kDatasetFormatVersion, "{}: field 'format_version' is {}, this build reads version {}", path,
               version, kDatasetFormatVersion);
  DatasetManifest m;
  m.kind = get_string(j, "kind", path);
  STRATA_CHECK(m.kind == "tokens" || m.kind == "images" || m.kind == "sequences",
               "{}: field 'kind' is '{}', expected 'tokens', 'images' or 'sequences'", path, m.kind);
  if (m.is_tokens())
    read_token_fields(j, path, m);
  else
    read_array_fields(j, path, m);
  const json& splits = field(j, "splits", path, "");
  STRATA_CHECK(splits.is_object(), "{}: field 'splits' must be an object with 'train' and 'val'", path);
  for (const char* split : {"train", "val"}) {
    const std::string where = std::string("splits.") + split;
    const json& list = field(splits, split, path, "splits.");
    STRATA_CHECK(list.is_array() && !list.empty(), "{}: field '{}' must be a non-empty array of shards", path, where);
    auto& out = m.splits[split];
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string w = fmt::format("{}[{}].", where, i);
      ShardEntry e;
      e.file = get_string(list[i], "file", path, w);
      STRATA_CHECK(!e.file.empty() && fs::path(e.file).filename().string() == e.file,
                   "{}: field '{}file' is '{}', expected a plain file name inside the dataset directory", path, w,
                   e.file);
      e.count = get_int(list[i], m.count_field(), path, w);
      STRATA_CHECK(e.count >= 0, "{}: field '{}{}' is {}, expected >= 0", path, w, m.count_field(), e.count);
      e.xxh64 = get_hex(list[i], "xxh64", path, w);
      out.push_back(e);
    }
    STRATA_CHECK(m.total(split) > 0, "{}: split '{}' is empty (its shards hold 0 {}): every split needs data", path,
                 split, m.count_field());
  }
  return m;
}

void write_manifest(const std::string& dir, const DatasetManifest& m) {
  json j;
  j["format"] = kDatasetFormat;
  j["format_version"] = kDatasetFormatVersion;
  j["kind"] = m.kind;
  j["dtype"] = m.dtype;
  if (m.is_tokens()) {
    j["vocab_size"] = m.vocab_size;
    j["eot_id"] = m.eot_id;
    j["tokenizer"] = m.tokenizer;
    if (!m.tokenizer_file.empty()) {
      j["tokenizer_file"] = m.tokenizer_file;
      j["tokenizer_xxh64"] = checksum_hex(m.tokenizer_xxh64);
    }
  } else {
    j["sample_shape"] = m.sample_shape;
    j["label_shape"] = m.label_shape;
    j["num_classes"] = m.num_classes;
    if (!m.mean.empty()) j["normalization"] = {{"mean", m.mean}, {"std", m.std}};
  }
  json splits = json::object();
  for (const auto& [split, shards] : m.splits) {
    json list = json::array();
    for (const auto& s : shards)
      list.push_back({{"file", s.file}, {m.count_field(), s.count}, {"xxh64", checksum_hex(s.xxh64)}});
    splits[split] = list;
  }
  j["splits"] = splits;
  write_file_atomically((fs::path(dir) / kManifestName).string(), j.dump(2) + "\n");
}

}  // namespace strata::data
