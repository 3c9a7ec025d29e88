#include "data/preprocess_text.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/token_dataset.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;

std::vector<uint32_t> read_split(const std::string& path, const std::string& split) {
  auto file = h5::open_file(path);
  return h5::read_dataset<uint32_t>(file, split + "/tokens", path);
}

// Decodes byte-level tokens back into documents: every document must end with EOT.
std::vector<std::string> decode(const std::vector<uint32_t>& tokens) {
  std::vector<std::string> docs;
  std::string current;
  for (uint32_t id : tokens) {
    EXPECT_LE(id, 256u);
    if (id == 256) {
      docs.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(id));
    }
  }
  EXPECT_TRUE(current.empty()) << "tokens do not end with EOT";
  return docs;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Train and val keep corpus order, so merging them by the report's split must give back every document.
void expect_round_trip(const std::string& out, const std::vector<std::string>& expected_docs,
                       const TextPreprocessReport& r) {
  auto train = read_split(out, "train"), val = read_split(out, "val");
  auto train_docs = decode(train), val_docs = decode(val);
  EXPECT_EQ(r.documents, static_cast<int64_t>(expected_docs.size()));
  EXPECT_EQ(r.train_documents, static_cast<int64_t>(train_docs.size()));
  EXPECT_EQ(r.val_documents, static_cast<int64_t>(val_docs.size()));
  EXPECT_EQ(r.train_tokens, static_cast<int64_t>(train.size()));
  EXPECT_EQ(r.val_tokens, static_cast<int64_t>(val.size()));
  // Each split is an order-preserving subsequence of the corpus, and together they are all of it.
  size_t ti = 0, vi = 0;
  for (const auto& doc : expected_docs) {
    if (ti < train_docs.size() && train_docs[ti] == doc) {
      ++ti;
    } else {
      ASSERT_LT(vi, val_docs.size()) << "document missing: " << doc;
      EXPECT_EQ(val_docs[vi], doc);
      ++vi;
    }
  }
  EXPECT_EQ(ti, train_docs.size());
  EXPECT_EQ(vi, val_docs.size());
  auto info = inspect_token_dataset(out);
  EXPECT_EQ(info.vocab_size, 257);
  EXPECT_EQ(info.eot_id, 256);
  EXPECT_EQ(info.tokenizer, "byte");
}

TEST(PreprocessText, SeparatedDocumentsRoundTrip) {
  TempDir dir;
  using namespace std::string_literals;  // the text holds a NUL byte
  auto a = dir.write("a.txt", "first doc\nline two\n%\nsecond\n%\n%\nthird \xff\x00 bytes\n"s);
  auto b = dir.write("b.txt", "%\nfourth\r\n%\r\nfifth, no newline");
  TextPreprocessOptions opt;
  opt.clean = opt.dedup = false;  // these tests check the split and format on exact bytes
  opt.inputs = {a, b};
  opt.output = dir.file("out.h5");
  opt.doc_separator = "%";
  opt.val_fraction = 0.4;
  opt.seed = 3;
  auto r = preprocess_text(opt);
  std::vector<std::string> docs{"first doc\nline two\n", "second\n", "third \xff\x00 bytes\n"s, "fourth\r\n",
                                "fifth, no newline"};
  EXPECT_EQ(r.val_documents, 2);  // round(5 * 0.4)
  EXPECT_EQ(r.bytes_in, static_cast<int64_t>(slurp(a).size() + slurp(b).size()));
  expect_round_trip(opt.output, docs, r);
  // Exactly: the train tokens are the train documents' bytes, each followed by EOT.
  auto train = read_split(opt.output, "train");
  int64_t total = 0;
  for (const auto& d : docs) total += static_cast<int64_t>(d.size()) + 1;
  EXPECT_EQ(r.train_tokens + r.val_tokens, total);
  EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(opt.output)));
}

TEST(PreprocessText, EachFileIsOneDocumentWithoutSeparator) {
  TempDir dir;
  std::vector<std::string> docs{"alpha\n%\nstill alpha\n", "beta", "gamma\n", "delta delta"};
  TextPreprocessOptions opt;
  opt.clean = opt.dedup = false;  // these tests check the split and format on exact bytes
  for (size_t i = 0; i < docs.size(); ++i) opt.inputs.push_back(dir.write("f" + std::to_string(i), docs[i]));
  opt.output = dir.file("out.h5");
  opt.val_fraction = 0.1;  // rounds to 0, clamped to 1
  auto r = preprocess_text(opt);
  EXPECT_EQ(r.val_documents, 1);
  EXPECT_EQ(r.train_documents, 3);
  expect_round_trip(opt.output, docs, r);
}

TEST(PreprocessText, SplitIsDeterministicInSeed) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "document number " + std::to_string(i) + "\n%\n";
  auto in = dir.write("many.txt", text);
  auto run = [&](uint64_t seed, const std::string& name) {
    TextPreprocessOptions opt{{in}, dir.file(name), "%", 0.25, seed};
    opt.clean = opt.dedup = false;  // these tests check the split and format on exact bytes
    auto r = preprocess_text(opt);
    EXPECT_EQ(r.documents, 40);
    EXPECT_EQ(r.val_documents, 10);
    return decode(read_split(opt.output, "val"));
  };
  auto v1 = run(1, "s1.h5"), v1b = run(1, "s1b.h5"), v2 = run(2, "s2.h5");
  EXPECT_EQ(v1, v1b);
  EXPECT_NE(v1, v2);
  EXPECT_EQ(read_split(dir.file("s1.h5"), "train"), read_split(dir.file("s1b.h5"), "train"));
}

TEST(PreprocessText, TwoDocumentsGiveOneEach) {
  TempDir dir;
  auto in = dir.write("two.txt", "one\n%\ntwo\n");
  TextPreprocessOptions opt{{in}, dir.file("out.h5"), "%", 0.9, 0};
  opt.clean = opt.dedup = false;  // these tests check the split and format on exact bytes
  auto r = preprocess_text(opt);
  EXPECT_EQ(r.train_documents, 1);
  EXPECT_EQ(r.val_documents, 1);
  expect_round_trip(opt.output, {"one\n", "two\n"}, r);
}

TEST(PreprocessText, Errors) {
  TempDir dir;
  auto ok = dir.write("ok.txt", "a\n%\nb\n");
  std::string out = dir.file("out.h5");
  auto old = dir.write("out.h5", "previous content");
  auto fails = [&](TextPreprocessOptions opt, std::initializer_list<std::string> fragments) {
    opt.clean = opt.dedup = false;
    expect_error([&] { preprocess_text(opt); }, fragments);
    EXPECT_EQ(slurp(old), "previous content") << "a failed run must not touch an existing output";
    EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(out)));
  };
  fails({{ok, dir.file("missing.txt")}, out, "%", 0.1, 0}, {dir.file("missing.txt"), "not found"});
  auto empty = dir.write("empty.txt", "");
  fails({{ok, empty}, out, "%", 0.1, 0}, {empty, "empty"});
  auto one = dir.write("one.txt", "only one document\n%\n%\n");
  fails({{one}, out, "%", 0.1, 0}, {"1 document(s) left of 1", "at least 2"});
  fails({{}, out, "%", 0.1, 0}, {"no input"});
  fails({{ok}, out, "%", 0.0, 0}, {"val_fraction"});
  fails({{ok}, out, "%", 1.0, 0}, {"val_fraction"});
  // An unwritable output directory is named.
  expect_error([&] { preprocess_text({{ok}, dir.file("no/such/dir/out.h5"), "%", 0.5, 0}); }, {"no/such/dir/out.h5"});
}

TEST(PreprocessText, RealFortuneFile) {
  const std::string path = "/usr/share/games/fortunes/computers";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent (Debian package 'fortunes' not installed)";
  std::string text = slurp(path);
  // Independent split: fortunes are "text\n" blocks joined by "%\n" lines.
  std::vector<std::string> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sep = text.find("\n%\n", pos);
    if (sep == std::string::npos) {
      docs.push_back(text.substr(pos));
      break;
    }
    docs.push_back(text.substr(pos, sep + 1 - pos));
    pos = sep + 3;
  }
  ASSERT_GT(docs.size(), 100u);
  TempDir dir;
  TextPreprocessOptions opt{{path}, dir.file("fortunes.h5"), "%", 0.1, 1234};
  opt.clean = opt.dedup = false;  // these tests check the split and format on exact bytes
  auto r = preprocess_text(opt);
  EXPECT_EQ(r.bytes_in, static_cast<int64_t>(text.size()));
  EXPECT_EQ(r.val_documents, std::llround(docs.size() * 0.1));
  expect_round_trip(opt.output, docs, r);
  // The result is usable as training data straight away.
  TokenWindows w(opt.output, "train", 64, 257);
  EXPECT_EQ(w.num_windows(), (r.train_tokens - 1) / 64);
}

}  // namespace
}  // namespace strata::data
