#pragma once
// Byte-level BPE tokenizer: ids 0..255 are the bytes, 256.. the learned merges in order, the last id is
// end-of-text. Any byte string (invalid UTF-8 and NULs included) encodes and decodes back exactly.
//
// Pre-tokenization. Merges never cross chunk boundaries (which keeps training fast and lets encoding cache whole
// chunks). Bytes fall into classes: letter (A-Z, a-z, or any byte >= 0x80, so UTF-8 text stays whole), digit
// (0-9), newline ('\n'), blank (' ', '\t', '\r', '\v', '\f') and other (every remaining byte: punctuation,
// control bytes, NUL). A chunk starting at position i is:
//   1. '\n' alone;
//   2. a ' ' followed by a letter, digit or other byte: the ' ' plus the maximal run of that byte's class;
//   3. a letter, digit or other byte: the maximal run of its class;
//   4. a blank: the maximal run of blanks, except that a final ' ' directly followed by a letter, digit or other
//      byte is left to start the next chunk (rule 2), so "a   b" -> "a", "  ", " b".
// A chunk longer than kBpeMaxChunkBytes is cut after that many bytes (the rest starts a new chunk by the same
// rules); this bounds the cost of pathological inputs such as long runs without whitespace.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::data {

inline constexpr size_t kBpeMaxChunkBytes = 64;
inline constexpr const char* kBpeJsonType = "bpe-bytes";
inline constexpr int64_t kBpeJsonVersion = 1;

// End (exclusive) of the pre-tokenization chunk that starts at `begin` (< text.size()), by the rules above.
size_t bpe_chunk_end(std::string_view text, size_t begin);
// All chunks of `text`, in order (they concatenate to `text`).
std::vector<std::string_view> bpe_chunks(std::string_view text);

class BpeTokenizer {
 public:
  using Merge = std::pair<uint32_t, uint32_t>;

  // Learns merges until vocab_size (bytes + merges + end-of-text, >= 257) is reached or no pair of adjacent
  // tokens occurs at least twice; in the second case the result's vocab_size() is smaller than asked and the
  // caller should say so. Each step merges the pair with the highest count (occurrences weighted by chunk
  // frequency), ties going to the smallest (left id, right id): the result is deterministic. `progress`, when
  // set, is called every few hundred merges and at the end with (merges done, merges wanted).
  static BpeTokenizer train(const std::vector<std::string>& documents, int64_t vocab_size,
                            const std::function<void(int64_t, int64_t)>& progress = {});

  // Chunk by chunk, repeatedly merges the adjacent pair with the lowest merge rank (leftmost first). Never emits
  // end-of-text. Thread-safe: several threads may encode with one tokenizer at once.
  std::vector<uint32_t> encode(std::string_view text) const;
  void encode_append(std::string_view text, std::vector<uint32_t>& out) const;
  // Concatenated bytes of the ids; end-of-text decodes to nothing; an id >= vocab_size() is an error.
  std::string decode(const std::vector<uint32_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(merges_.size()) + 257; }
  int64_t eot_id() const { return vocab_size() - 1; }
  const std::vector<Merge>& merges() const { return merges_; }

  // {"type":"bpe-bytes","version":1,"vocab_size":V,"eot_id":V-1,"merges":[[a,b],...]}, one merge per line.
  std::string to_json() const;
  // Validates every field (merges may only refer to ids defined before them, no merge twice); errors name `where`
  // (the file) and the field.
  static BpeTokenizer from_json(const std::string& text, const std::string& where);
  // Atomic: writes path.tmp, fsyncs it, renames it over `path`.
  void save(const std::string& path) const;
  static BpeTokenizer load(const std::string& path);

 private:
  struct ChunkCache;
  explicit BpeTokenizer(std::vector<Merge> merges);
  uint32_t rank_of(uint32_t left, uint32_t right) const;
  void encode_chunk_uncached(std::string_view chunk, std::vector<uint32_t>& out) const;
  void encode_chunk(std::string_view chunk, std::vector<uint32_t>& out) const;

  std::vector<Merge> merges_;
  std::unordered_map<uint64_t, uint32_t> rank_;  // (left << 32 | right) -> merge index
  std::vector<std::string> bytes_;               // id -> the bytes it stands for (eot: empty)
  // Encoded chunks; shared by copies, which is sound because a tokenizer never changes after construction.
  std::shared_ptr<ChunkCache> cache_;
};

}  // namespace strata::data
