#include "data/manifest.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"

namespace strata::data {
namespace fs = std::filesystem;
using nlohmann::json;

TokenChecksum::TokenChecksum() : state_(XXH64_createState()) {
  STRATA_CHECK(state_ != nullptr, "XXH64_createState failed");
  XXH64_reset(static_cast<XXH64_state_t*>(state_), 0);
}
TokenChecksum::~TokenChecksum() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }

void TokenChecksum::update(const uint32_t* ids, size_t n) {
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
    XXH64_update(static_cast<XXH64_state_t*>(state_), buf, m * 4);
  }
}

uint64_t TokenChecksum::digest() const { return XXH64_digest(static_cast<XXH64_state_t*>(state_)); }

uint64_t token_checksum(const std::vector<uint32_t>& ids) {
  TokenChecksum c;
  c.update(ids.data(), ids.size());
  return c.digest();
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

ShardedManifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestName).string();
  std::error_code ec;
  STRATA_CHECK(fs::is_directory(dir, ec), "'{}': sharded dataset directory not found", dir);
  STRATA_CHECK(fs::is_regular_file(path, ec),
               "'{}': manifest not found (a sharded dataset directory needs {}; an interrupted writer leaves none)",
               path, kManifestName);
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
  STRATA_CHECK(format == kShardedFormat, "{}: field 'format' is '{}', expected '{}'", path, format, kShardedFormat);
  const int64_t version = get_int(j, "format_version", path);
  STRATA_CHECK(version == kShardedFormatVersion, "{}: field 'format_version' is {}, this build reads version {}", path,
               version, kShardedFormatVersion);
  ShardedManifest m;
  m.kind = get_string(j, "kind", path);
  STRATA_CHECK(m.kind == "tokens", "{}: field 'kind' is '{}', expected 'tokens'", path, m.kind);
  m.dtype = get_string(j, "dtype", path);
  STRATA_CHECK(m.dtype == "uint16" || m.dtype == "uint32", "{}: field 'dtype' is '{}', expected 'uint16' or 'uint32'",
               path, m.dtype);
  m.vocab_size = get_int(j, "vocab_size", path);
  STRATA_CHECK(m.vocab_size > 0, "{}: field 'vocab_size' is {}, expected > 0", path, m.vocab_size);
  m.eot_id = get_int(j, "eot_id", path);
  STRATA_CHECK(m.eot_id >= 0 && m.eot_id < m.vocab_size,
               "{}: field 'eot_id' is {}, expected 0 <= eot_id < vocab_size {}", path, m.eot_id, m.vocab_size);
  m.tokenizer = get_string(j, "tokenizer", path);
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
      e.tokens = get_int(list[i], "tokens", path, w);
      STRATA_CHECK(e.tokens >= 0, "{}: field '{}tokens' is {}, expected >= 0", path, w, e.tokens);
      const std::string hex = get_string(list[i], "xxh64", path, w);
      bool ok = hex.size() == 16 && hex.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
      STRATA_CHECK(ok, "{}: field '{}xxh64' is '{}', expected 16 hex digits", path, w, hex);
      e.xxh64 = std::stoull(hex, nullptr, 16);
      out.push_back(e);
    }
  }
  return m;
}

void write_manifest(const std::string& dir, const ShardedManifest& m) {
  json j;
  j["format"] = kShardedFormat;
  j["format_version"] = kShardedFormatVersion;
  j["kind"] = m.kind;
  j["dtype"] = m.dtype;
  j["vocab_size"] = m.vocab_size;
  j["eot_id"] = m.eot_id;
  j["tokenizer"] = m.tokenizer;
  json splits = json::object();
  for (const auto& [split, shards] : m.splits) {
    json list = json::array();
    for (const auto& s : shards) list.push_back({{"file", s.file}, {"tokens", s.tokens}, {"xxh64", checksum_hex(s.xxh64)}});
    splits[split] = list;
  }
  j["splits"] = splits;
  const std::string path = (fs::path(dir) / kManifestName).string();
  const std::string tmp = path + ".tmp";
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      STRATA_CHECK(out.good(), "'{}': cannot create", tmp);
      out << j.dump(2) << "\n";
      out.flush();
      STRATA_CHECK(out.good(), "'{}': write failed", tmp);
    }
    int fd = ::open(tmp.c_str(), O_RDONLY);
    STRATA_CHECK(fd >= 0, "'{}': cannot reopen to fsync", tmp);
    int rc = ::fsync(fd);
    ::close(fd);
    STRATA_CHECK(rc == 0, "'{}': fsync failed", tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    STRATA_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

}  // namespace strata::data
