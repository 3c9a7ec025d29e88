#include "data/preprocess_text.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_set>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "data/batch_sampler.hpp"
#include "data/bpe.hpp"
#include "data/rank_work.hpp"
#include "data/sharded_tokens.hpp"
#include "data/token_writer.hpp"

namespace strata::data {
namespace {
std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  STRATA_CHECK(std::filesystem::is_regular_file(path, ec), "'{}': input text file not found", path);
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in, "'{}': cannot open input text file", path);
  std::ostringstream text;
  text << in.rdbuf();
  STRATA_CHECK(!in.bad(), "'{}': read error", path);
  return text.str();
}

struct Corpus {
  std::vector<std::string> docs;
  std::vector<std::string> origin;  // "file: document k" of each document, for error messages
  int64_t bytes = 0;
};

Corpus read_corpus(const std::vector<std::string>& inputs, const std::string& separator) {
  STRATA_CHECK(!inputs.empty(), "preprocess: no input text files given");
  Corpus c;
  for (const auto& path : inputs) {
    std::string text = read_whole_file(path);
    STRATA_CHECK(!text.empty(), "'{}': input text file is empty", path);
    c.bytes += static_cast<int64_t>(text.size());
    auto docs = split_documents(text, separator);
    for (size_t k = 0; k < docs.size(); ++k) {
      c.docs.push_back(std::move(docs[k]));
      c.origin.push_back(fmt::format("{}: document {}", path, k));
    }
  }
  return c;
}

enum DocStatus : uint64_t { kKept = 0, kEmpty = 1, kShort = 2, kLong = 3, kDuplicate = 4 };

// Cleans one document and decides whether the length filters keep it.
DocStatus clean_and_filter(std::string& doc, const std::string& origin, bool clean, const TextCleanOptions& cleaning,
                           int64_t min_bytes, int64_t max_bytes) {
  if (clean) {
    try {
      doc = clean_text(doc, cleaning);
    } catch (const Error& e) {
      STRATA_FAIL("{}: {}", origin, e.what());
    }
  }
  if (doc.empty()) return kEmpty;
  if (int64_t(doc.size()) < min_bytes) return kShort;
  if (max_bytes > 0 && int64_t(doc.size()) > max_bytes) return kLong;
  return kKept;
}

struct Hash128 {
  uint64_t lo, hi;
  bool operator==(const Hash128& o) const { return lo == o.lo && hi == o.hi; }
};
struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return size_t(h.lo); }
};

// Marks every document equal to an earlier kept one (by 128-bit hash of its cleaned bytes) as a duplicate.
void mark_duplicates(std::vector<uint64_t>& status, const std::vector<uint64_t>& hashes) {
  std::unordered_set<Hash128, Hash128Hasher> seen;
  seen.reserve(status.size());
  for (size_t i = 0; i < status.size(); ++i)
    if (status[i] == kKept && !seen.insert({hashes[2 * i], hashes[2 * i + 1]}).second) status[i] = kDuplicate;
}
}  // namespace

std::vector<std::string> split_documents(const std::string& text, const std::string& doc_separator) {
  std::vector<std::string> docs;
  if (doc_separator.empty()) {
    if (!text.empty()) docs.push_back(text);
    return docs;
  }
  // A document keeps its lines' newlines; the separator line (with its newline) belongs to no document.
  std::string current;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    size_t next = end == std::string::npos ? text.size() : end + 1;
    std::string line = text.substr(pos, (end == std::string::npos ? text.size() : end) - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == doc_separator) {
      if (!current.empty()) docs.push_back(std::move(current));
      current.clear();
    } else {
      current.append(text, pos, next - pos);
    }
    pos = next;
  }
  if (!current.empty()) docs.push_back(std::move(current));
  return docs;
}

TextPreprocessReport preprocess_text(const TextPreprocessOptions& o, MPI_Comm comm) {
  int P = 1, me = 0;
  STRATA_MPI(MPI_Comm_size(comm, &P));
  STRATA_MPI(MPI_Comm_rank(comm, &me));
  Progress total_time("preprocess", "docs", 0, false);
  TextPreprocessReport report;
  Corpus corpus;
  std::optional<BpeTokenizer> bpe;
  run_on_all_ranks(comm, "preprocess", [&] {
    STRATA_CHECK(!o.output.empty(), "preprocess: no output path given");
    STRATA_CHECK(o.val_fraction > 0 && o.val_fraction < 1, "preprocess: val_fraction is {}, expected 0 < f < 1",
                 o.val_fraction);
    STRATA_CHECK(o.min_bytes >= 0 && o.max_bytes >= 0, "preprocess: min_bytes {} / max_bytes {} must be >= 0",
                 o.min_bytes, o.max_bytes);
    if (o.clean) validate(o.cleaning);
    if (!o.bpe.empty()) bpe = BpeTokenizer::load(o.bpe);
    corpus = read_corpus(o.inputs, o.doc_separator);
  });
  const int64_t n_in = int64_t(corpus.docs.size());
  report.documents_in = n_in;
  report.bytes_in = corpus.bytes;

  // This rank cleans, filters and hashes its contiguous block of documents.
  // Not a structured binding: lambdas capture those only from C++20 on (nvcc warns).
  const auto block = block_range(n_in, P, me);
  const int64_t first = block.first, last = block.second;
  std::vector<uint64_t> my_status, my_hashes;
  Progress progress(fmt::format("preprocess (rank 0 of {}): cleaning", P), "docs", last - first, o.progress && me == 0);
  run_on_all_ranks(comm, "preprocess", [&] {
    for (int64_t i = first; i < last; ++i) {
      auto& doc = corpus.docs[size_t(i)];
      const auto st = clean_and_filter(doc, corpus.origin[size_t(i)], o.clean, o.cleaning, o.min_bytes, o.max_bytes);
      const XXH128_hash_t h = XXH3_128bits(doc.data(), doc.size());
      my_status.push_back(st);
      my_hashes.push_back(h.low64);
      my_hashes.push_back(h.high64);
      progress.update(i - first + 1);
    }
    progress.finish();
  });
  // Every rank learns every document's status and hash, so all agree on duplicates and on the split.
  auto status = all_gather_concat(comm, my_status);
  const auto hashes = all_gather_concat(comm, my_hashes);
  if (o.dedup) mark_duplicates(status, hashes);
  std::vector<int64_t> kept;  // global indices of kept documents, in corpus order
  for (int64_t i = 0; i < n_in; ++i) {
    switch (status[size_t(i)]) {
      case kKept: kept.push_back(i); break;
      case kEmpty: ++report.dropped_empty; break;
      case kShort: ++report.dropped_short; break;
      case kLong: ++report.dropped_long; break;
      default: ++report.dropped_duplicate; break;
    }
  }
  const int64_t n = int64_t(kept.size());
  STRATA_CHECK(
      n >= 2,
      "preprocess: {} document(s) left of {} in {} input file(s) (separator '{}'; dropped: {} empty, {} "
      "shorter than {} bytes, {} longer than max, {} duplicates); need at least 2, one for train and one for val",
      n, n_in, o.inputs.size(), o.doc_separator, report.dropped_empty, report.dropped_short, o.min_bytes,
      report.dropped_long, report.dropped_duplicate);

  // Val = the first n_val entries of a seeded permutation of the kept documents; both splits keep corpus order.
  const int64_t n_val = std::clamp<int64_t>(std::llround(double(n) * o.val_fraction), 1, n - 1);
  std::vector<char> is_val(size_t(n_in), 0);
  const auto order = seeded_permutation(n, o.seed, /*stream=*/0);
  for (int64_t i = 0; i < n_val; ++i) is_val[size_t(kept[size_t(order[size_t(i)])])] = 1;

  const int64_t eot = bpe ? bpe->eot_id() : kByteEotId;
  const TokenDatasetMeta meta{bpe ? bpe->vocab_size() : kByteVocabSize, eot, bpe ? "bpe" : "byte",
                              bpe ? bpe->to_json() : ""};
  std::vector<uint32_t> train, val;  // this rank's documents, in corpus order
  Progress tokenizing(fmt::format("preprocess (rank 0 of {}): tokenizing", P), "docs", last - first,
                      o.progress && me == 0);
  for (int64_t i = first; i < last; ++i) {
    if (status[size_t(i)] != kKept) continue;
    auto& out = is_val[size_t(i)] ? val : train;
    const auto& doc = corpus.docs[size_t(i)];
    if (bpe)
      bpe->encode_append(doc, out);
    else
      out.insert(out.end(), reinterpret_cast<const unsigned char*>(doc.data()),
                 reinterpret_cast<const unsigned char*>(doc.data()) + doc.size());
    out.push_back(uint32_t(eot));
    tokenizing.update(i - first + 1);
  }
  tokenizing.finish();
  corpus = Corpus{};  // the tokens are all that is needed now

  int64_t train_total = 0, val_total = 0;
  for (auto c : all_gather_int64(comm, int64_t(train.size()))) train_total += c;
  for (auto c : all_gather_int64(comm, int64_t(val.size()))) val_total += c;
  report.train_tokens = train_total;
  report.val_tokens = val_total;
  STRATA_CHECK(train_total >= 2 && val_total >= 2, "preprocess: split sizes train {} / val {} tokens; each needs >= 2",
               train_total, val_total);
  if (o.shards > 0) {
    write_sharded_tokens(o.output, meta, train, val, o.shards, comm);
  } else {
    // One file: rank 0 gathers the splits (rank order = corpus order) and writes.
    auto gather = [&](const std::vector<uint32_t>& mine) {
      const auto sizes = all_gather_int64(comm, int64_t(mine.size()));
      std::vector<int> counts, displs;
      int64_t total = 0;
      for (auto s : sizes) {
        STRATA_CHECK(total + s < INT32_MAX, "preprocess: {} tokens exceed one gather; use --shards", total + s);
        displs.push_back(int(total));
        counts.push_back(int(s));
        total += s;
      }
      std::vector<uint32_t> all(me == 0 ? static_cast<size_t>(total) : 0);
      STRATA_MPI(MPI_Gatherv(mine.data(), int(mine.size()), MPI_UINT32_T, all.data(), counts.data(), displs.data(),
                             MPI_UINT32_T, 0, comm));
      return all;
    };
    const auto all_train = gather(train), all_val = gather(val);
    run_on_all_ranks(comm, "preprocess", [&] {
      if (me == 0) write_token_dataset(o.output, meta, all_train, all_val);
    });
  }
  report.documents = n;
  report.val_documents = n_val;
  report.train_documents = n - n_val;
  report.vocab_size = meta.vocab_size;
  report.seconds = total_time.elapsed_s();
  return report;
}

BpeTrainReport train_bpe_from_files(const BpeTrainOptions& o) {
  STRATA_CHECK(!o.output.empty(), "bpe-train: no output path given");
  if (o.clean) validate(o.cleaning);
  Progress clock("bpe-train", "merges", o.vocab_size - 257, o.progress);
  Corpus corpus = read_corpus(o.inputs, o.doc_separator);
  std::vector<uint64_t> status, hashes;
  for (size_t i = 0; i < corpus.docs.size(); ++i) {
    status.push_back(clean_and_filter(corpus.docs[i], corpus.origin[i], o.clean, o.cleaning, 1, 0));
    const XXH128_hash_t h = XXH3_128bits(corpus.docs[i].data(), corpus.docs[i].size());
    hashes.push_back(h.low64);
    hashes.push_back(h.high64);
  }
  if (o.dedup) mark_duplicates(status, hashes);
  std::vector<std::string> docs;
  BpeTrainReport report;
  for (size_t i = 0; i < corpus.docs.size(); ++i)
    if (status[i] == kKept) {
      report.bytes += int64_t(corpus.docs[i].size());
      docs.push_back(std::move(corpus.docs[i]));
    }
  STRATA_CHECK(!docs.empty(), "bpe-train: no documents left after cleaning in {} input file(s)", o.inputs.size());
  auto tok = BpeTokenizer::train(docs, o.vocab_size, [&](int64_t done, int64_t) { clock.update(done); });
  clock.update(tok.vocab_size() - 257);
  clock.finish();
  tok.save(o.output);
  report.documents = int64_t(docs.size());
  report.vocab_size = tok.vocab_size();
  report.seconds = clock.elapsed_s();
  return report;
}

}  // namespace strata::data
