#pragma once
// Text files -> byte-level token dataset (docs/dataset-format.md): each byte is its own id (0..255), every document
// is followed by the end-of-text id 256, vocab_size 257. Documents (not tokens) are split into train and val.
#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

inline constexpr int64_t kByteEotId = 256;
inline constexpr int64_t kByteVocabSize = 257;

struct TextPreprocessOptions {
  std::vector<std::string> inputs;
  std::string output;
  // A line equal to this (a trailing '\r' ignored) separates documents, e.g. "%" for fortune files;
  // empty = each file is one document. Empty documents are dropped.
  std::string doc_separator;
  double val_fraction = 0.1;  // in (0, 1); the val split gets round(n * val_fraction) documents, clamped to 1..n-1
  uint64_t seed = 0;          // which documents go to val
  int shards = 0;             // > 0: `output` is a directory of this many shards per split (sharded_tokens.hpp)
};

struct TextPreprocessReport {
  int64_t documents = 0, train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t bytes_in = 0;
};

// Reads every input whole (the corpus must fit in memory), writes `output` atomically.
TextPreprocessReport preprocess_text(const TextPreprocessOptions& options);

// The documents of one text, split as preprocess_text does (exposed for tests and tools).
std::vector<std::string> split_documents(const std::string& text, const std::string& doc_separator);

}  // namespace strata::data
