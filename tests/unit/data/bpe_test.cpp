#include "data/bpe.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;
using Merges = std::vector<BpeTokenizer::Merge>;

// Pseudo-English with a skewed word distribution, punctuation, numbers and line breaks: enough repeated structure
// for BPE to learn many merges from a few KB.
std::string english_like(std::mt19937& rng, size_t bytes) {
  static const std::vector<std::string> words = {
      "the",   "of",   "and",   "to",     "a",       "in",     "is",        "you",    "that",  "it",   "he",    "was",
      "for",   "on",   "are",   "as",     "with",    "his",    "they",      "I",      "at",    "be",   "this",  "have",
      "from",  "or",   "one",   "had",    "by",      "word",   "but",       "not",    "what",  "all",  "were",  "we",
      "when",  "your", "can",   "said",   "there",   "use",    "an",        "each",   "which", "she",  "do",    "how",
      "their", "if",   "will",  "up",     "other",   "about",  "out",       "many",   "then",  "them", "these", "so",
      "some",  "her",  "would", "make",   "like",    "him",    "into",      "time",   "has",   "look", "two",   "more",
      "write", "go",   "see",   "number", "no",      "way",    "could",     "people", "my",    "than", "first", "water",
      "been",  "call", "who",   "oil",    "its",     "now",    "find",      "long",   "down",  "day",  "did",   "get",
      "come",  "made", "may",   "part",   "fortune", "cookie", "computers", "wisdom", "café",  "naïve"};
  std::geometric_distribution<size_t> pick(0.06);
  std::string s;
  bool sentence_start = true;
  while (s.size() < bytes) {
    std::string w = words[pick(rng) % words.size()];
    if (sentence_start) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    s += w;
    sentence_start = false;
    const unsigned r = rng() % 100;
    if (r < 8) {
      s += ".";
      sentence_start = true;
    } else if (r < 12) {
      s += ",";
    } else if (r < 13) {
      s += " " + std::to_string(rng() % 2000);
    }
    s += (rng() % 14 == 0) ? "\n" : " ";
    if (rng() % 60 == 0) s += "\n  -- Someone\n%\n";
  }
  return s;
}

std::vector<std::string> english_corpus(uint32_t seed, int docs, size_t bytes_per_doc) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < docs; ++i) out.push_back(english_like(rng, bytes_per_doc));
  return out;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::vector<uint32_t> bytes_of(std::string_view s) {
  return std::vector<uint32_t>(reinterpret_cast<const unsigned char*>(s.data()),
                               reinterpret_cast<const unsigned char*>(s.data()) + s.size());
}

// Replaces the non-overlapping occurrences of (left, right), scanning left to right.
void apply_merge(std::vector<uint32_t>& ids, const BpeTokenizer::Merge& m, uint32_t new_id) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i + 1 < ids.size() && ids[i] == m.first && ids[i + 1] == m.second) {
      out.push_back(new_id);
      ++i;
    } else {
      out.push_back(ids[i]);
    }
  }
  ids = std::move(out);
}

// Reference encoder: every merge in rank order over every chunk.
std::vector<uint32_t> reference_encode(const Merges& merges, const std::string& text) {
  std::vector<uint32_t> out;
  for (std::string_view chunk : bpe_chunks(text)) {
    std::vector<uint32_t> ids = bytes_of(chunk);
    for (size_t r = 0; r < merges.size(); ++r) apply_merge(ids, merges[r], static_cast<uint32_t>(256 + r));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

// Reference trainer: recounts every pair over every chunk before each merge.
Merges reference_train(const std::vector<std::string>& docs, int64_t vocab_size) {
  std::map<std::string, int64_t> chunk_freq;
  for (const auto& d : docs)
    for (std::string_view c : bpe_chunks(d)) ++chunk_freq[std::string(c)];
  std::vector<std::pair<std::vector<uint32_t>, int64_t>> words;
  for (const auto& [chunk, freq] : chunk_freq) words.emplace_back(bytes_of(chunk), freq);
  Merges merges;
  while (static_cast<int64_t>(merges.size()) + 257 < vocab_size) {
    std::map<BpeTokenizer::Merge, int64_t> counts;  // ordered: the first of equal counts is the smallest pair
    for (const auto& [ids, freq] : words)
      for (size_t i = 0; i + 1 < ids.size(); ++i) counts[{ids[i], ids[i + 1]}] += freq;
    BpeTokenizer::Merge best{};
    int64_t best_count = 0;
    for (const auto& [pair, count] : counts)
      if (count > best_count) best = pair, best_count = count;
    if (best_count < 2) break;
    const auto new_id = static_cast<uint32_t>(256 + merges.size());
    for (auto& [ids, freq] : words) apply_merge(ids, best, new_id);
    merges.push_back(best);
  }
  return merges;
}

std::vector<std::string_view> chunks(std::string_view s) { return bpe_chunks(s); }
using Views = std::vector<std::string_view>;

TEST(BpeChunks, FollowTheDocumentedRules) {
  EXPECT_EQ(chunks("Hello, world!  It's 2024.\n\nok"),
            (Views{"Hello", ",", " world", "!", " ", " It", "'", "s", " 2024", ".", "\n", "\n", "ok"}));
  EXPECT_EQ(chunks("a\t b \n x"), (Views{"a", "\t", " b", " ", "\n", " x"}));
  EXPECT_EQ(chunks("   "), (Views{"   "}));
  EXPECT_EQ(chunks(" ...!! 12ab"), (Views{" ...!!", " 12", "ab"}));
  EXPECT_EQ(chunks("caf\xc3\xa9s na\xc3\xafve"), (Views{"caf\xc3\xa9s", " na\xc3\xafve"}));
  EXPECT_EQ(chunks(std::string_view("x\0\x01y", 4)), (Views{"x", std::string_view("\0\x01", 2), "y"}));
  EXPECT_EQ(chunks("\r\n\t\t\n"), (Views{"\r", "\n", "\t\t", "\n"}));
}

TEST(BpeChunks, CutsLongRuns) {
  const std::string letters(100, 'a');
  EXPECT_EQ(chunks(letters), (Views{std::string_view(letters).substr(0, 64), std::string_view(letters).substr(64)}));
  const std::string spaced = " " + letters;
  const auto c = chunks(spaced);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].size(), kBpeMaxChunkBytes);
  EXPECT_EQ(c[1].size(), 101 - kBpeMaxChunkBytes);
}

TEST(BpeChunks, ConcatenateToTheInput) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string s = trial % 2 ? random_bytes(rng, rng() % 300) : english_like(rng, rng() % 300);
    std::string joined;
    for (auto c : bpe_chunks(s)) {
      ASSERT_FALSE(c.empty());
      ASSERT_LE(c.size(), kBpeMaxChunkBytes);
      joined += c;
    }
    ASSERT_EQ(joined, s);
  }
}

TEST(BpeTokenizer, HandCheckedTinyCorpus) {
  // Chunks "aaab", " aaab", "ab": (a,a) occurs 4 times, (a,b) 3. After aa=256: (a,b) 3, (256,a) 2.
  // After ab=257: (256,257) 2. Then only (' ',258) is left, once: training stops.
  const auto tok = BpeTokenizer::train({"aaab aaab", "ab"}, 1000);
  EXPECT_EQ(tok.merges(), (Merges{{'a', 'a'}, {'a', 'b'}, {256, 257}}));
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.eot_id(), 259);
  EXPECT_EQ(tok.encode("aaab"), (std::vector<uint32_t>{258}));
  EXPECT_EQ(tok.encode(" aaab ab"), (std::vector<uint32_t>{' ', 258, ' ', 257}));
  EXPECT_EQ(tok.encode("aaaab"), (std::vector<uint32_t>{256, 256, 'b'}));  // leftmost (a,a) first
}

TEST(BpeTokenizer, BreaksTiesBySmallestPair) {
  const std::vector<std::string> docs = {"cd", "ab", "cd", "ab"};
  EXPECT_EQ(BpeTokenizer::train(docs, 259).merges(), (Merges{{'a', 'b'}, {'c', 'd'}}));
  EXPECT_EQ(BpeTokenizer::train(docs, 258).merges(), (Merges{{'a', 'b'}}));
}

TEST(BpeTokenizer, NeedsAPairThatOccursTwice) {
  const auto tok = BpeTokenizer::train({"ab", "cd"}, 300);
  EXPECT_TRUE(tok.merges().empty());
  EXPECT_EQ(tok.vocab_size(), 257);
}

TEST(BpeTokenizer, Vocab257HasNoMergesAndEncodesBytes) {
  const auto tok = BpeTokenizer::train(english_corpus(1, 3, 500), 257);
  EXPECT_TRUE(tok.merges().empty());
  EXPECT_EQ(tok.vocab_size(), 257);
  EXPECT_EQ(tok.eot_id(), 256);
  const std::string text = "Hello, world\n\xff\x00";
  EXPECT_EQ(tok.encode(text), bytes_of(text));
}

TEST(BpeTokenizer, RejectsTooSmallVocab) {
  expect_error([] { BpeTokenizer::train({"abc"}, 256); }, {"vocab_size 256", "257"});
  expect_error([] { BpeTokenizer::train({"abc"}, -1); }, {"vocab_size -1"});
}

TEST(BpeTokenizer, TrainingMatchesTheReferenceTrainer) {
  const auto docs = english_corpus(2, 6, 700);  // ~4 KB
  // 400 merges are more than this corpus has pairs occurring twice: both stop on that condition.
  const auto tok = BpeTokenizer::train(docs, 257 + 400);
  EXPECT_EQ(tok.merges(), reference_train(docs, 257 + 400));
  EXPECT_GT(tok.merges().size(), 100u);
  EXPECT_LT(tok.merges().size(), 400u);
  const auto fewer = BpeTokenizer::train(docs, 257 + 80);
  EXPECT_EQ(fewer.merges(), reference_train(docs, 257 + 80));
  EXPECT_EQ(fewer.vocab_size(), 257 + 80);
}

TEST(BpeTokenizer, TrainingMatchesTheReferenceOnRepetitiveText) {
  // Small alphabets give runs like "aaaa" and "abab", where merged occurrences are neighbours.
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::string> docs;
    for (int d = 0; d < 5; ++d) {
      std::string s;
      const size_t n = rng() % 200;
      for (size_t i = 0; i < n; ++i) s += "ab a"[rng() % (trial % 2 ? 4 : 2)];
      docs.push_back(s);
    }
    ASSERT_EQ(BpeTokenizer::train(docs, 400).merges(), reference_train(docs, 400)) << "trial " << trial;
  }
}

TEST(BpeTokenizer, EncodingMatchesTheReferenceEncoder) {
  const auto tok = BpeTokenizer::train(english_corpus(4, 6, 700), 257 + 300);
  std::mt19937 rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::string text = english_like(rng, 400);
    if (trial % 5 == 0) text += random_bytes(rng, 50);
    ASSERT_EQ(tok.encode(text), reference_encode(tok.merges(), text)) << text;
    ASSERT_EQ(tok.encode(text), reference_encode(tok.merges(), text)) << "second call (cached chunks)";
  }
}

TEST(BpeTokenizer, RoundTripsRandomBytesAndText) {
  const auto tok = BpeTokenizer::train(english_corpus(6, 6, 700), 257 + 300);
  std::mt19937 rng(8);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string s = random_bytes(rng, rng() % 500);  // invalid UTF-8, NULs, everything
    ASSERT_EQ(tok.decode(tok.encode(s)), s);
  }
  const std::string text = english_like(rng, 5000);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(tok.decode(tok.encode("")), "");
}

TEST(BpeTokenizer, CompressesText) {
  const auto tok = BpeTokenizer::train(english_corpus(9, 20, 1000), 257 + 500);
  std::mt19937 rng(10);
  const std::string held_out = english_like(rng, 4000);
  const auto ids = tok.encode(held_out);
  EXPECT_LT(ids.size(), held_out.size() * 45 / 100) << ids.size() << " tokens for " << held_out.size() << " bytes";
  for (uint32_t id : ids) ASSERT_LT(static_cast<int64_t>(id), tok.eot_id());  // encode never emits eot
}

TEST(BpeTokenizer, IsDeterministicAndIndependentOfDocumentOrder) {
  auto docs = english_corpus(11, 8, 500);
  const auto first = BpeTokenizer::train(docs, 257 + 200).merges();
  EXPECT_EQ(BpeTokenizer::train(docs, 257 + 200).merges(), first);
  std::reverse(docs.begin(), docs.end());
  EXPECT_EQ(BpeTokenizer::train(docs, 257 + 200).merges(), first);
}

TEST(BpeTokenizer, ReportsProgress) {
  std::vector<std::pair<int64_t, int64_t>> calls;
  const auto tok = BpeTokenizer::train(english_corpus(12, 20, 1000), 257 + 600,
                                       [&](int64_t done, int64_t target) { calls.emplace_back(done, target); });
  ASSERT_GE(calls.size(), 2u);
  EXPECT_EQ(calls.front(), (std::pair<int64_t, int64_t>{256, 600}));
  EXPECT_EQ(calls.back(), (std::pair<int64_t, int64_t>{static_cast<int64_t>(tok.merges().size()), 600}));
}

TEST(BpeTokenizer, EncodeAppendAppends) {
  const auto tok = BpeTokenizer::train(english_corpus(13, 4, 500), 257 + 100);
  std::vector<uint32_t> out = {7, 8};
  tok.encode_append("the water", out);
  auto expected = tok.encode("the water");
  expected.insert(expected.begin(), {7, 8});
  EXPECT_EQ(out, expected);
}

TEST(BpeTokenizer, DecodesEotToNothingAndRejectsOutOfRangeIds) {
  const auto tok = BpeTokenizer::train({"aaab aaab", "ab"}, 1000);
  EXPECT_EQ(tok.decode({258, static_cast<uint32_t>(tok.eot_id()), ' ', 257}), "aaab ab");
  expect_error([&] { tok.decode({'a', 260}); }, {"token id 260", "vocab_size 260"});
  expect_error([&] { tok.decode({4000000000u}); }, {"4000000000"});
}

TEST(BpeTokenizer, EncodesFromManyThreadsAtOnce) {
  const auto tok = BpeTokenizer::train(english_corpus(14, 10, 1000), 257 + 400);
  std::vector<std::string> texts;
  std::mt19937 rng(15);
  for (int i = 0; i < 8; ++i) texts.push_back(english_like(rng, 20000));
  std::vector<std::vector<uint32_t>> expected;
  for (const auto& t : texts) expected.push_back(reference_encode(tok.merges(), t));
  std::vector<int> ok(texts.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < texts.size(); ++i)
    threads.emplace_back([&, i] {
      bool same = true;
      for (int rep = 0; rep < 3; ++rep) same = same && tok.encode(texts[i]) == expected[i];
      ok[i] = same;
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_TRUE(ok[i]) << "thread " << i;
}

TEST(BpeTokenizer, JsonRoundTrip) {
  const auto tok = BpeTokenizer::train(english_corpus(16, 6, 700), 257 + 300);
  const std::string json = tok.to_json();
  const auto back = BpeTokenizer::from_json(json, "mem.json");
  EXPECT_EQ(back.merges(), tok.merges());
  EXPECT_EQ(back.vocab_size(), tok.vocab_size());
  EXPECT_EQ(back.eot_id(), tok.eot_id());
  EXPECT_EQ(back.to_json(), json);
  const std::string text = "Fortune cookie: the water will find you.";
  EXPECT_EQ(back.encode(text), tok.encode(text));

  const auto empty = BpeTokenizer::train({}, 257);
  EXPECT_TRUE(BpeTokenizer::from_json(empty.to_json(), "e").merges().empty());
}

TEST(BpeTokenizer, SavesAtomicallyAndLoads) {
  TempDir dir;
  const auto tok = BpeTokenizer::train(english_corpus(17, 4, 500), 257 + 100);
  const std::string path = dir.file("tokenizer.json");
  dir.write("tokenizer.json", "old contents");
  tok.save(path);
  EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(path)));
  EXPECT_EQ(BpeTokenizer::load(path).merges(), tok.merges());
  expect_error([&] { BpeTokenizer::load(dir.file("missing.json")); }, {"missing.json"});
  expect_error([&] { tok.save(dir.file("no/such/dir/t.json")); }, {"no/such/dir/t.json.", ".tmp"});
}

TEST(BpeTokenizer, FromJsonNamesTheFileAndTheField) {
  const std::string where = "tok.json";
  auto bad = [&](const std::string& json, std::initializer_list<std::string> fragments) {
    std::vector<std::string> all = {where};
    all.insert(all.end(), fragments);
    try {
      BpeTokenizer::from_json(json, where);
      ADD_FAILURE() << "accepted: " << json;
    } catch (const Error& e) {
      for (const auto& f : all) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << f << " in " << e.what();
    }
  };
  const std::string ok_tail = R"("version": 1, "vocab_size": 259, "eot_id": 258, "merges": [[97, 98], [256, 99]]})";
  EXPECT_EQ(BpeTokenizer::from_json(R"({"type": "bpe-bytes", )" + ok_tail, where).merges(),
            (Merges{{97, 98}, {256, 99}}));
  bad(R"({"type": "gpt2", )" + ok_tail, {"'type'", "gpt2", "bpe-bytes"});
  bad(R"({"version": 1})", {"'type'", "missing"});
  bad(R"({"type": "bpe-bytes", "version": 2, "vocab_size": 257, "eot_id": 256, "merges": []})", {"'version'", "2"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 259, "eot_id": 258, "merges": [[97, 257], [97, 98]]})",
      {"'merges[0]'", "id 257"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 259, "eot_id": 258, "merges": [[97, 98], [97, 98]]})",
      {"'merges[1]'", "repeats merges[0]"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 258, "eot_id": 257, "merges": [[97, -1]]})",
      {"'merges[0]'", "id -1"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 258, "eot_id": 257, "merges": [[97]]})", {"'merges[0]'"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 300, "eot_id": 258, "merges": [[97, 98], [256, 99]]})",
      {"'vocab_size'", "300", "259"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 259, "eot_id": 7, "merges": [[97, 98], [256, 99]]})",
      {"'eot_id'", "7", "258"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": "259", "eot_id": 258, "merges": []})",
      {"'vocab_size'", "integer"});
  bad(R"({"type": "bpe-bytes", "version": 1, "vocab_size": 257, "eot_id": 256, "merges": {}})", {"'merges'"});
  bad(R"({"type": "bpe-bytes", )", {"not valid JSON"});
  bad(R"([1, 2])", {"JSON object"});
}

}  // namespace
}  // namespace strata::data
