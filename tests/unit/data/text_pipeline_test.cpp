// The cleaning, filtering, de-duplication and BPE stages of preprocess_text, end to end through the written dataset.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/atomic_file.hpp"
#include "core/h5.hpp"
#include "data/bpe.hpp"
#include "data/open_tokens.hpp"
#include "data/preprocess_text.hpp"
#include "data/sharded_tokens.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;

std::vector<uint32_t> read_ids(const std::string& path, const std::string& split) {
  auto file = h5::open_file(path);
  return h5::read_dataset<uint32_t>(file, split + "/tokens", path);
}

// Documents of a split: ids between end-of-text markers, decoded by `decode_doc`.
template <class Decode>
std::vector<std::string> documents(const std::vector<uint32_t>& ids, uint32_t eot, Decode decode_doc) {
  std::vector<std::string> docs;
  std::vector<uint32_t> current;
  for (uint32_t id : ids) {
    if (id == eot) {
      docs.push_back(decode_doc(current));
      current.clear();
    } else {
      current.push_back(id);
    }
  }
  EXPECT_TRUE(current.empty()) << "split does not end with end-of-text";
  return docs;
}
std::string bytes_of(const std::vector<uint32_t>& ids) { return std::string(ids.begin(), ids.end()); }

std::multiset<std::string> all_documents(const std::string& path) {
  std::multiset<std::string> out;
  for (const char* split : {"train", "val"})
    for (auto& d : documents(read_ids(path, split), 256, bytes_of)) out.insert(d);
  return out;
}

TEST(TextPipeline, CleansFiltersAndDropsDuplicates) {
  TempDir dir;
  const std::string corpus =
      "Hello   world  \n%\n"          // cleaned to "Hello world"
      "Hello world\n%\n"              // a duplicate of the first after cleaning
      "caf\x65\xcc\x81 au lait\n%\n"  // e + combining acute: NFC composes it to U+00E9
      "\x07\x1b\n%\n"                 // only control characters: empty after cleaning
      "tiny\n%\n"                     // shorter than min_bytes
      "this one is far too long to keep\n%\n"
      "line one\n\n\n\nline two\n%\n"  // blank lines collapse to one
      "Hello world\n";                 // another duplicate
  TextPreprocessOptions o;
  o.inputs = {dir.write("c.txt", corpus)};
  o.output = dir.file("out.h5");
  o.doc_separator = "%";
  o.val_fraction = 0.3;
  o.min_bytes = 5;
  o.max_bytes = 25;
  const auto r = preprocess_text(o);
  EXPECT_EQ(r.documents_in, 8);
  EXPECT_EQ(r.dropped_empty, 1);
  EXPECT_EQ(r.dropped_short, 1);
  EXPECT_EQ(r.dropped_long, 1);
  EXPECT_EQ(r.dropped_duplicate, 2);
  EXPECT_EQ(r.documents, 3);
  const std::multiset<std::string> want{"Hello world", "caf\xc3\xa9 au lait", "line one\n\nline two"};
  EXPECT_EQ(all_documents(o.output), want);

  // Turning each stage off brings its documents back.
  o.dedup = false;
  o.output = dir.file("dups.h5");
  EXPECT_EQ(preprocess_text(o).documents, 5);
  o.clean = false;
  o.min_bytes = 1;
  o.max_bytes = 0;
  o.output = dir.file("raw.h5");
  const auto raw = preprocess_text(o);
  EXPECT_EQ(raw.documents, 8);
  EXPECT_EQ(all_documents(o.output).count("Hello   world  \n"), 1u);
}

TEST(TextPipeline, InvalidUtf8NamesTheFileAndDocument) {
  TempDir dir;
  TextPreprocessOptions o;
  o.inputs = {dir.write("bad.txt", "fine\n%\nbro\xffken\n%\nalso fine\n")};
  o.output = dir.file("out.h5");
  o.doc_separator = "%";
  expect_error([&] { preprocess_text(o); }, {"bad.txt", "document 1", "invalid UTF-8", "offset 3"});
  o.cleaning.replace_invalid_utf8 = true;
  preprocess_text(o);
  EXPECT_EQ(all_documents(o.output).count("bro\xef\xbf\xbdken"), 1u);
}

TEST(TextPipeline, BpeDatasetRoundTripsAndCarriesItsTokenizer) {
  TempDir dir;
  std::string corpus;
  for (int i = 0; i < 60; ++i)
    corpus += "the quick brown fox " + std::to_string(i) + " jumps over the lazy dog\nand again " +
              std::to_string(i * 7) + "\n%\n";
  const std::string input = dir.write("c.txt", corpus);
  BpeTrainOptions t;
  t.inputs = {input};
  t.output = dir.file("bpe.json");
  t.doc_separator = "%";
  t.vocab_size = 300;
  const auto tr = train_bpe_from_files(t);
  EXPECT_EQ(tr.vocab_size, 300);
  EXPECT_EQ(tr.documents, 60);
  const auto tok = BpeTokenizer::load(t.output);

  for (int shards : {0, 2}) {
    TextPreprocessOptions o;
    o.inputs = {input};
    o.output = dir.file(shards ? "ds" : "one.h5");
    o.doc_separator = "%";
    o.bpe = t.output;
    o.shards = shards;
    const auto r = preprocess_text(o);
    EXPECT_EQ(r.vocab_size, 300);
    const auto info = inspect_tokens(o.output);
    EXPECT_EQ(info.tokenizer, "bpe");
    EXPECT_EQ(info.vocab_size, 300);
    EXPECT_EQ(info.eot_id, 299);
    ASSERT_FALSE(info.tokenizer_json.empty());
    const auto stored = BpeTokenizer::from_json(info.tokenizer_json, o.output);
    EXPECT_EQ(stored.merges(), tok.merges());
    // BPE compresses this text, and every document decodes back to its cleaned text.
    EXPECT_LT(r.train_tokens + r.val_tokens, int64_t(corpus.size()) / 2);
    if (shards == 0) {
      std::multiset<std::string> got;
      for (const char* split : {"train", "val"})
        for (auto& d : documents(read_ids(o.output, split), 299, [&](auto& ids) { return tok.decode(ids); }))
          got.insert(d);
      EXPECT_EQ(got.size(), 60u);
      EXPECT_EQ(got.count("the quick brown fox 3 jumps over the lazy dog\nand again 21"), 1u);
    }
  }
  // A tampered tokenizer file in a sharded dataset is caught by its checksum.
  write_file_atomically(dir.file("ds/tokenizer.json"), tok.to_json() + " ");
  expect_error([&] { inspect_tokens(dir.file("ds")); }, {"tokenizer.json", "checksum mismatch", "tokenizer_xxh64"});
}

}  // namespace
}  // namespace strata::data
