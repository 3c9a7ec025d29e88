#include "data/preprocess_text.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "data/batch_sampler.hpp"
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

void append_document(std::vector<uint32_t>& tokens, const std::string& doc) {
  for (unsigned char byte : doc) tokens.push_back(byte);
  tokens.push_back(static_cast<uint32_t>(kByteEotId));
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

TextPreprocessReport preprocess_text(const TextPreprocessOptions& options) {
  STRATA_CHECK(!options.inputs.empty(), "preprocess: no input text files given");
  STRATA_CHECK(!options.output.empty(), "preprocess: no output path given");
  STRATA_CHECK(options.val_fraction > 0 && options.val_fraction < 1, "preprocess: val_fraction is {}, expected 0 < f < 1",
               options.val_fraction);
  TextPreprocessReport report;
  std::vector<std::string> docs;
  for (const auto& path : options.inputs) {
    std::string text = read_whole_file(path);
    STRATA_CHECK(!text.empty(), "'{}': input text file is empty", path);
    report.bytes_in += static_cast<int64_t>(text.size());
    for (auto& doc : split_documents(text, options.doc_separator)) docs.push_back(std::move(doc));
  }
  const int64_t n = static_cast<int64_t>(docs.size());
  STRATA_CHECK(n >= 2, "preprocess: found {} document(s) in {} input file(s) (separator '{}'); need at least 2, one "
               "for train and one for val", n, options.inputs.size(), options.doc_separator);

  // Val = the first n_val entries of a seeded permutation of document indices; both splits keep corpus order.
  int64_t n_val = std::clamp<int64_t>(std::llround(n * options.val_fraction), 1, n - 1);
  std::vector<char> is_val(n, 0);
  auto order = seeded_permutation(n, options.seed, /*stream=*/0);
  for (int64_t i = 0; i < n_val; ++i) is_val[order[i]] = 1;

  std::vector<uint32_t> train, val;
  for (int64_t i = 0; i < n; ++i) append_document(is_val[i] ? val : train, docs[i]);
  STRATA_CHECK(train.size() >= 2 && val.size() >= 2, "preprocess: split sizes train {} / val {} tokens; each needs >= 2",
               train.size(), val.size());

  const TokenDatasetMeta meta{kByteVocabSize, kByteEotId, "byte"};
  if (options.shards > 0) write_sharded_tokens(options.output, meta, train, val, options.shards);
  else write_token_dataset(options.output, meta, train, val);
  report.documents = n;
  report.val_documents = n_val;
  report.train_documents = n - n_val;
  report.train_tokens = static_cast<int64_t>(train.size());
  report.val_tokens = static_cast<int64_t>(val.size());
  return report;
}

}  // namespace strata::data
