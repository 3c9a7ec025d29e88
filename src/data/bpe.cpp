#include "data/bpe.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace strata::data {
namespace {

enum class ByteClass : uint8_t { kLetter, kDigit, kOther, kBlank, kNewline };

constexpr std::array<ByteClass, 256> make_byte_classes() {
  std::array<ByteClass, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80)
      t[c] = ByteClass::kLetter;
    else if (c >= '0' && c <= '9')
      t[c] = ByteClass::kDigit;
    else if (c == '\n')
      t[c] = ByteClass::kNewline;
    else if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f')
      t[c] = ByteClass::kBlank;
    else
      t[c] = ByteClass::kOther;
  }
  return t;
}
constexpr std::array<ByteClass, 256> kByteClasses = make_byte_classes();

ByteClass class_at(std::string_view text, size_t i) { return kByteClasses[static_cast<unsigned char>(text[i])]; }
bool is_word_class(ByteClass c) { return c == ByteClass::kLetter || c == ByteClass::kDigit || c == ByteClass::kOther; }

uint64_t pair_key(uint32_t left, uint32_t right) { return (static_cast<uint64_t>(left) << 32) | right; }
uint32_t key_left(uint64_t key) { return static_cast<uint32_t>(key >> 32); }
uint32_t key_right(uint64_t key) { return static_cast<uint32_t>(key); }

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();
constexpr int64_t kProgressEvery = 256;

}  // namespace

size_t bpe_chunk_end(std::string_view text, size_t begin) {
  const size_t n = text.size();
  const size_t limit = std::min(n, begin + kBpeMaxChunkBytes);
  const ByteClass first = class_at(text, begin);
  if (first == ByteClass::kNewline) return begin + 1;
  auto run_of = [&](size_t from, ByteClass cls) {
    while (from < limit && class_at(text, from) == cls) ++from;
    return from;
  };
  if (text[begin] == ' ' && begin + 1 < limit && is_word_class(class_at(text, begin + 1)))
    return run_of(begin + 1, class_at(text, begin + 1));
  if (is_word_class(first)) return run_of(begin, first);
  size_t end = run_of(begin, ByteClass::kBlank);
  // Leave a final ' ' to the word after it (rule 2); the run has at least two bytes here, so it stays non-empty.
  if (end < n && text[end - 1] == ' ' && is_word_class(class_at(text, end)) && end - begin > 1) --end;
  return end;
}

std::vector<std::string_view> bpe_chunks(std::string_view text) {
  std::vector<std::string_view> chunks;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = bpe_chunk_end(text, pos);
    chunks.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------------------------
// Training: chunk frequencies, then merges with incremental pair counts. Only the chunks ("words") that contain
// the merged pair are touched, and only the pairs next to each merged occurrence change, so a merge costs time
// proportional to its occurrences rather than to the corpus.
namespace {

struct Word {
  std::vector<uint32_t> ids;
  int64_t freq = 0;
};

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // Max-heap order: higher count first, then the smaller (left, right).
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

class MergeLearner {
 public:
  explicit MergeLearner(const std::vector<std::string>& documents) {
    std::unordered_map<std::string_view, int64_t> chunk_freq;
    for (const auto& doc : documents)
      for (size_t pos = 0; pos < doc.size();) {
        const size_t end = bpe_chunk_end(doc, pos);
        ++chunk_freq[std::string_view(doc).substr(pos, end - pos)];
        pos = end;
      }
    words_.reserve(chunk_freq.size());
    for (const auto& [chunk, freq] : chunk_freq) {
      Word w;
      w.ids.assign(reinterpret_cast<const unsigned char*>(chunk.data()),
                   reinterpret_cast<const unsigned char*>(chunk.data()) + chunk.size());
      w.freq = freq;
      words_.push_back(std::move(w));
    }
    for (uint32_t wi = 0; wi < words_.size(); ++wi) {
      const auto& ids = words_[wi].ids;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        const uint64_t key = pair_key(ids[i], ids[i + 1]);
        counts_[key] += words_[wi].freq;
        where_[key].push_back(wi);
      }
    }
    for (const auto& [key, count] : counts_) heap_.push({count, key});
  }

  // The pair to merge next, or false when no pair occurs at least twice.
  bool best_pair(uint64_t& key) {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      auto it = counts_.find(top.pair);
      if (it == counts_.end() || it->second != top.count) continue;  // stale: the count changed since the push
      if (top.count < 2) return false;
      key = top.pair;
      return true;
    }
    return false;
  }

  void merge(uint64_t key, uint32_t new_id) {
    const uint32_t a = key_left(key), b = key_right(key);
    std::vector<uint32_t> affected = std::move(where_[key]);
    where_.erase(key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    changed_.clear();
    for (uint32_t wi : affected) merge_in_word(wi, a, b, new_id);
    counts_.erase(key);  // every occurrence is merged now (with a == b, merge_in_word may have touched it too)
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    for (uint64_t p : changed_) {
      if (p == key) continue;
      auto it = counts_.find(p);
      if (it == counts_.end()) continue;
      if (it->second <= 0) {
        counts_.erase(it);
        where_.erase(p);
      } else {
        heap_.push({it->second, p});
      }
    }
  }

 private:
  void add(uint64_t p, int64_t delta) {
    counts_[p] += delta;
    changed_.push_back(p);
  }

  // Merges every occurrence of (a, b) in one word, left to right, recording how the neighbouring pairs change.
  void merge_in_word(uint32_t wi, uint32_t a, uint32_t b, uint32_t new_id) {
    auto& ids = words_[wi].ids;
    const int64_t f = words_[wi].freq;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      if (ids[i] != a || ids[i + 1] != b) continue;
      if (i > 0) {
        add(pair_key(ids[i - 1], a), -f);
        add(pair_key(ids[i - 1], new_id), f);
        where_[pair_key(ids[i - 1], new_id)].push_back(wi);
      }
      if (i + 2 < ids.size()) {
        add(pair_key(b, ids[i + 2]), -f);
        add(pair_key(new_id, ids[i + 2]), f);
        where_[pair_key(new_id, ids[i + 2])].push_back(wi);
      }
      ids[i] = new_id;
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    }
  }

  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> counts_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;  // pair -> words that may contain it (superset)
  std::priority_queue<HeapEntry> heap_;                        // may hold stale entries; checked against counts_
  std::vector<uint64_t> changed_;
};

}  // namespace

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& documents, int64_t vocab_size,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  STRATA_CHECK(vocab_size >= 257 && vocab_size <= int64_t{std::numeric_limits<uint32_t>::max()},
               "BPE vocab_size {} is out of range: it must be at least 257 (256 bytes + end-of-text) and fit in "
               "uint32",
               vocab_size);
  const int64_t target = vocab_size - 257;
  std::vector<Merge> merges;
  merges.reserve(static_cast<size_t>(target));
  if (target > 0) {
    MergeLearner learner(documents);
    uint64_t key = 0;
    while (static_cast<int64_t>(merges.size()) < target && learner.best_pair(key)) {
      const auto new_id = static_cast<uint32_t>(256 + merges.size());
      learner.merge(key, new_id);
      merges.emplace_back(key_left(key), key_right(key));
      if (progress && merges.size() % kProgressEvery == 0) progress(static_cast<int64_t>(merges.size()), target);
    }
  }
  if (progress) progress(static_cast<int64_t>(merges.size()), target);
  return BpeTokenizer(std::move(merges));
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding and decoding.

// Chunks already encoded, split into independently locked shards so that concurrent encoders rarely wait. A full
// shard is simply emptied: the cache only saves time.
struct BpeTokenizer::ChunkCache {
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxEntriesPerShard = 1 << 14;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<uint32_t>> map;
  };
  std::array<Shard, kShards> shards;
};

BpeTokenizer::BpeTokenizer(std::vector<Merge> merges)
    : merges_(std::move(merges)), cache_(std::make_shared<ChunkCache>()) {
  rank_.reserve(merges_.size());
  bytes_.reserve(merges_.size() + 257);
  for (int c = 0; c < 256; ++c) bytes_.emplace_back(1, static_cast<char>(c));
  for (size_t r = 0; r < merges_.size(); ++r) {
    rank_.emplace(pair_key(merges_[r].first, merges_[r].second), static_cast<uint32_t>(r));
    bytes_.push_back(bytes_[merges_[r].first] + bytes_[merges_[r].second]);
  }
  bytes_.emplace_back();  // end-of-text
}

uint32_t BpeTokenizer::rank_of(uint32_t left, uint32_t right) const {
  auto it = rank_.find(pair_key(left, right));
  return it == rank_.end() ? kNoRank : it->second;
}

void BpeTokenizer::encode_chunk_uncached(std::string_view chunk, std::vector<uint32_t>& out) const {
  // Chunks are at most kBpeMaxChunkBytes long, so fixed arrays suffice. ranks[i] is the rank of (ids[i], ids[i+1]).
  std::array<uint32_t, kBpeMaxChunkBytes> ids{}, ranks{};
  size_t n = chunk.size();
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<unsigned char>(chunk[i]);
  for (size_t i = 0; i + 1 < n; ++i) ranks[i] = rank_of(ids[i], ids[i + 1]);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost of equal ranks
    if (ranks[best] == kNoRank) break;
    ids[best] = 256 + ranks[best];
    std::memmove(&ids[best + 1], &ids[best + 2], (n - best - 2) * sizeof(uint32_t));
    std::memmove(&ranks[best], &ranks[best + 1], (n - best - 2) * sizeof(uint32_t));
    --n;
    if (best > 0) ranks[best - 1] = rank_of(ids[best - 1], ids[best]);
    if (best + 1 < n) ranks[best] = rank_of(ids[best], ids[best + 1]);
  }
  out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n));
}

void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const {
  if (chunk.size() == 1 || merges_.empty()) {
    for (char c : chunk) out.push_back(static_cast<unsigned char>(c));
    return;
  }
  auto& shard = cache_->shards[std::hash<std::string_view>{}(chunk) % ChunkCache::kShards];
  std::string key(chunk);
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.map.find(key);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  encode_chunk_uncached(chunk, out);
  std::vector<uint32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.map.size() >= ChunkCache::kMaxEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::move(key), std::move(ids));
}

void BpeTokenizer::encode_append(std::string_view text, std::vector<uint32_t>& out) const {
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = bpe_chunk_end(text, pos);
    encode_chunk(text.substr(pos, end - pos), out);
    pos = end;
  }
}

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 1);
  encode_append(text, out);
  return out;
}

std::string BpeTokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string text;
  for (uint32_t id : ids) {
    STRATA_CHECK(id < bytes_.size(), "BPE decode: token id {} is out of range (vocab_size {})", id, vocab_size());
    text += bytes_[id];
  }
  return text;
}

// ---------------------------------------------------------------------------------------------------------------
// Serialization.

std::string BpeTokenizer::to_json() const {
  std::string s = fmt::format("{{\"type\": \"{}\", \"version\": {}, \"vocab_size\": {}, \"eot_id\": {}, \"merges\": [",
                              kBpeJsonType, kBpeJsonVersion, vocab_size(), eot_id());
  for (size_t i = 0; i < merges_.size(); ++i)
    s += fmt::format("{}\n  [{}, {}]", i == 0 ? "" : ",", merges_[i].first, merges_[i].second);
  s += merges_.empty() ? "]}\n" : "\n]}\n";
  return s;
}

namespace {
using nlohmann::json;

const json& field(const json& obj, const char* name, const std::string& where) {
  STRATA_CHECK(obj.contains(name), "{}: BPE tokenizer field '{}' is missing", where, name);
  return obj.at(name);
}
int64_t int_field(const json& obj, const char* name, const std::string& where) {
  const json& v = field(obj, name, where);
  STRATA_CHECK(v.is_number_integer(), "{}: BPE tokenizer field '{}' must be an integer, got {}", where, name, v.dump());
  return v.get<int64_t>();
}
}  // namespace

BpeTokenizer BpeTokenizer::from_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    STRATA_FAIL("{}: BPE tokenizer is not valid JSON: {}", where, e.what());
  }
  STRATA_CHECK(j.is_object(), "{}: BPE tokenizer must be a JSON object", where);
  const json& type = field(j, "type", where);
  STRATA_CHECK(type.is_string() && type.get<std::string>() == kBpeJsonType,
               "{}: BPE tokenizer field 'type' is {}, expected \"{}\"", where, type.dump(), kBpeJsonType);
  const int64_t version = int_field(j, "version", where);
  STRATA_CHECK(version == kBpeJsonVersion, "{}: BPE tokenizer field 'version' is {}, this build reads version {}",
               where, version, kBpeJsonVersion);
  const json& list = field(j, "merges", where);
  STRATA_CHECK(list.is_array(), "{}: BPE tokenizer field 'merges' must be an array of [left, right] id pairs", where);
  std::vector<Merge> merges;
  merges.reserve(list.size());
  std::unordered_map<uint64_t, size_t> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const int64_t defined = 256 + static_cast<int64_t>(i);  // ids defined before this merge: 0 .. defined-1
    STRATA_CHECK(m.is_array() && m.size() == 2 && m[0].is_number_integer() && m[1].is_number_integer(),
                 "{}: BPE tokenizer field 'merges[{}]' is {}, expected [left, right] with integer ids", where, i,
                 m.dump());
    const int64_t left = m[0].get<int64_t>(), right = m[1].get<int64_t>();
    for (int64_t id : {left, right})
      STRATA_CHECK(id >= 0 && id < defined,
                   "{}: BPE tokenizer field 'merges[{}]' refers to id {}, but merge {} (id {}) may only use ids "
                   "0..{} defined before it",
                   where, i, id, i, defined, defined - 1);
    const uint64_t key = pair_key(static_cast<uint32_t>(left), static_cast<uint32_t>(right));
    auto [it, fresh] = seen.emplace(key, i);
    STRATA_CHECK(fresh, "{}: BPE tokenizer field 'merges[{}]' repeats merges[{}] ([{}, {}])", where, i, it->second,
                 left, right);
    merges.emplace_back(static_cast<uint32_t>(left), static_cast<uint32_t>(right));
  }
  const int64_t expected_vocab = 257 + static_cast<int64_t>(merges.size());
  const int64_t vocab_size = int_field(j, "vocab_size", where);
  STRATA_CHECK(vocab_size == expected_vocab,
               "{}: BPE tokenizer field 'vocab_size' is {}, expected {} (256 bytes + {} merges + end-of-text)", where,
               vocab_size, expected_vocab, merges.size());
  const int64_t eot = int_field(j, "eot_id", where);
  STRATA_CHECK(eot == expected_vocab - 1, "{}: BPE tokenizer field 'eot_id' is {}, expected {} (vocab_size - 1)", where,
               eot, expected_vocab - 1);
  return BpeTokenizer(std::move(merges));
}

void BpeTokenizer::save(const std::string& path) const { write_file_atomically(path, to_json()); }

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "'{}': cannot open BPE tokenizer file", path);
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path);
}

}  // namespace strata::data
