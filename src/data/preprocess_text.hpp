#pragma once
// Text files -> token dataset (docs/dataset-format.md, "Text preprocessing"): split into documents, clean
// (Unicode normalization, control characters, whitespace), filter by length, drop exact duplicates, split
// documents into train and val, tokenize (byte-level or BPE), write one file or N shards. Runs on every rank
// of an MPI communicator: documents are cut into contiguous blocks per rank, and the result is identical for
// any number of ranks.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/text_clean.hpp"

namespace strata::data {

inline constexpr int64_t kByteEotId = 256;
inline constexpr int64_t kByteVocabSize = 257;

struct TextPreprocessOptions {
  std::vector<std::string> inputs;
  std::string output;
  // A line equal to this (a trailing '\r' ignored) separates documents, e.g. "%" for fortune files;
  // empty = each file is one document.
  std::string doc_separator;
  double val_fraction = 0.1;  // in (0, 1); the val split gets round(n * val_fraction) documents, clamped to 1..n-1
  uint64_t seed = 0;          // which documents go to val
  int shards = 0;             // > 0: `output` is a directory of this many shards per split (sharded_tokens.hpp)
  bool clean = true;          // apply clean_text with `cleaning` (false: documents keep their bytes exactly)
  TextCleanOptions cleaning;
  bool dedup = true;      // drop documents identical (after cleaning) to an earlier one
  int64_t min_bytes = 1;  // drop documents shorter than this after cleaning (empty ones always go)
  int64_t max_bytes = 0;  // drop documents longer than this after cleaning (0: no limit)
  std::string bpe;        // a BPE tokenizer file (strata preprocess bpe-train); empty: byte-level
  bool progress = false;  // periodic progress lines on stderr (rank 0)
};

struct TextPreprocessReport {
  int64_t documents_in = 0;  // documents found in the inputs
  int64_t dropped_empty = 0, dropped_short = 0, dropped_long = 0, dropped_duplicate = 0;
  int64_t documents = 0, train_documents = 0, val_documents = 0;  // kept
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t bytes_in = 0;  // bytes of the input files
  int64_t vocab_size = 0;
  double seconds = 0;
};

// Collective over comm (every rank gets the same report). Reads every input whole on each rank (the corpus must
// fit in memory); writes `output` atomically (a file: tmp + rename by rank 0; a directory: shards, then manifest).
TextPreprocessReport preprocess_text(const TextPreprocessOptions& options, MPI_Comm comm = MPI_COMM_SELF);

struct BpeTrainOptions {
  std::vector<std::string> inputs;
  std::string output;  // the tokenizer's JSON file
  std::string doc_separator;
  int64_t vocab_size = 4096;
  bool clean = true;
  TextCleanOptions cleaning;
  bool dedup = true;
  bool progress = false;
};
struct BpeTrainReport {
  int64_t documents = 0, bytes = 0, vocab_size = 0;
  double seconds = 0;
};
// Learns a BPE vocabulary from the cleaned, de-duplicated documents (the same cleaning preprocess_text applies, so
// the merges fit the text they will encode) and saves it atomically. One process.
BpeTrainReport train_bpe_from_files(const BpeTrainOptions& options);

// The documents of one text, split as preprocess_text does (exposed for tests and tools).
std::vector<std::string> split_documents(const std::string& text, const std::string& doc_separator);

}  // namespace strata::data
