#include "data/sharded_tokens.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "data/batch_sampler.hpp"
#include "data/manifest.hpp"
#include "data/token_dataset.hpp"
#include "data/token_writer.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;

std::vector<uint32_t> pseudo_tokens(size_t n, uint32_t vocab, uint32_t salt) {
  std::vector<uint32_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint32_t>((i * 2654435761u + salt) % vocab);
  return v;
}

const TokenDatasetMeta kMeta{257, 256, "byte"};

nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}
void save_json(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

TEST(ShardedTokens, WriterLaysOutShardsAndManifest) {
  TempDir tmp;
  const std::string dir = tmp.file("ds");
  auto train = pseudo_tokens(100, 257, 1), val = pseudo_tokens(31, 257, 2);
  write_sharded_tokens(dir, kMeta, train, val, 3);
  auto m = read_manifest(dir);
  EXPECT_EQ(m.kind, "tokens");
  EXPECT_EQ(m.dtype, "uint16");
  EXPECT_EQ(m.vocab_size, 257);
  EXPECT_EQ(m.eot_id, 256);
  EXPECT_EQ(m.tokenizer, "byte");
  ASSERT_EQ(m.splits.at("train").size(), 3u);
  ASSERT_EQ(m.splits.at("val").size(), 3u);
  EXPECT_EQ(m.splits.at("train")[0].file, "train-00000.h5");
  EXPECT_EQ(m.splits.at("val")[2].file, "val-00002.h5");
  int64_t total = 0;
  for (const auto& e : m.splits.at("train")) {
    EXPECT_TRUE(e.count == 33 || e.count == 34);
    total += e.count;
  }
  EXPECT_EQ(total, 100);
  // First shard's checksum is the checksum of the first piece.
  std::vector<uint32_t> first(train.begin(), train.begin() + m.splits.at("train")[0].count);
  EXPECT_EQ(m.splits.at("train")[0].xxh64, token_checksum(first));
  // The checksum does not depend on the stored width: the same ids stored as uint32 hash the same.
  write_sharded_tokens(tmp.file("wide"), {70001, 256, "byte"}, train, val, 3);
  auto wide = read_manifest(tmp.file("wide"));
  EXPECT_EQ(wide.dtype, "uint32");
  for (int k = 0; k < 3; ++k) EXPECT_EQ(wide.splits.at("train")[k].xxh64, m.splits.at("train")[k].xxh64);
  ShardedTokenWindows wide_reader(tmp.file("wide"), "train", 8, 70001);  // verifies checksums on open
  // Each shard is a valid single-file dataset: TokenWindows reads it; the other split is empty.
  auto info = inspect_token_dataset(dir + "/train-00001.h5");
  EXPECT_EQ(info.val_tokens, 0);
  EXPECT_EQ(info.train_tokens, m.splits.at("train")[1].count);
  TokenWindows w(dir + "/train-00000.h5", "train", 4, 257);
  int32_t x[4], y[4];
  w.read_window(1, x, y);
  EXPECT_EQ(x[0], static_cast<int32_t>(train[4]));
  EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(dir + "/manifest.json")));
  // The manifest is plain JSON with the documented fields.
  auto j = load_json(dir + "/manifest.json");
  EXPECT_EQ(j["format"], "strata-dataset");
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(j["splits"]["train"][0]["xxh64"].get<std::string>().size(), 16u);
}

TEST(ShardedTokens, SameWindowsAsSingleFile) {
  TempDir tmp;
  auto train = pseudo_tokens(200, 257, 3), val = pseudo_tokens(50, 257, 4);
  const std::string single = tmp.file("one.h5"), dir = tmp.file("ds");
  write_token_dataset(single, kMeta, train, val);
  write_sharded_tokens(dir, kMeta, train, val, 3);
  for (int T : {1, 5, 16, 70}) {
    for (const char* split : {"train", "val"}) {
      if (T >= 50 && std::string(split) == "val") continue;
      TokenWindows a(single, split, T, 300);
      ShardedTokenWindows b(dir, split, T, 300);
      EXPECT_EQ(b.num_shards(), 3);
      ASSERT_EQ(a.num_windows(), b.num_windows()) << split << " T=" << T;
      EXPECT_EQ(a.num_tokens(), b.num_tokens());
      std::vector<int32_t> xa(T), ya(T), xb(T), yb(T);
      for (int64_t i = 0; i < a.num_windows(); ++i) {
        a.read_window(i, xa.data(), ya.data());
        b.read_window(i, xb.data(), yb.data());
        ASSERT_EQ(xa, xb) << split << " T=" << T << " window " << i;
        ASSERT_EQ(ya, yb) << split << " T=" << T << " window " << i;
      }
    }
  }
  // Shards of 2 tokens: one window of 8 tokens crosses all four shards.
  const std::string tiny = tmp.file("tiny");
  std::vector<uint32_t> t8 = pseudo_tokens(8, 257, 5);
  write_sharded_tokens(tiny, kMeta, t8, pseudo_tokens(8, 257, 6), 4);
  ShardedTokenWindows w(tiny, "train", 7, 257);
  ASSERT_EQ(w.num_windows(), 1);
  int32_t x[7], y[7];
  w.read_window(0, x, y);
  for (int t = 0; t < 7; ++t) {
    EXPECT_EQ(x[t], static_cast<int32_t>(t8[t]));
    EXPECT_EQ(y[t], static_cast<int32_t>(t8[t + 1]));
  }
}

TEST(ShardedTokens, SameBatchesAsSingleFile) {
  TempDir tmp;
  auto train = pseudo_tokens(301, 257, 7), val = pseudo_tokens(40, 257, 8);
  const std::string single = tmp.file("one.h5"), dir = tmp.file("ds");
  write_token_dataset(single, kMeta, train, val);
  write_sharded_tokens(dir, kMeta, train, val, 3);
  const int T = 8, B = 4;
  TokenWindows a(single, "train", T, 257);
  ShardedTokenWindows b(dir, "train", T, 257);
  for (bool shuffle : {false, true}) {
    BatchSampler sa(a.num_windows(), B, shuffle, 42), sb(b.num_windows(), B, shuffle, 42);
    std::vector<int32_t> xa(B * T), ya(B * T), xb(B * T), yb(B * T);
    for (int64_t step = 0; step < 25; ++step) {
      load_batch(a, sa, step, xa.data(), ya.data());
      load_batch(b, sb, step, xb.data(), yb.data());
      ASSERT_EQ(xa, xb) << "step " << step;
      ASSERT_EQ(ya, yb) << "step " << step;
    }
  }
}

TEST(ShardedTokens, LargeVocabularyAndIdCheck) {
  TempDir tmp;
  const std::string dir = tmp.file("ds");
  std::vector<uint32_t> train{70000, 1, 69999, 5, 7, 8}, val{0, 65536, 3, 4};
  write_sharded_tokens(dir, {70001, 70000, "sentencepiece"}, train, val, 2);
  EXPECT_EQ(read_manifest(dir).dtype, "uint32");
  ShardedTokenWindows w(dir, "train", 5, 70001);
  int32_t x[5], y[5];
  w.read_window(0, x, y);
  EXPECT_EQ(x[0], 70000);
  EXPECT_EQ(y[4], 8);
  expect_error([&] { ShardedTokenWindows(dir, "train", 5, 70000); }, {"manifest.json", "vocab_size", "70001"});
}

TEST(ShardedTokens, WriterErrors) {
  TempDir tmp;
  expect_error(
      [&] { write_sharded_tokens(tmp.file("a"), kMeta, pseudo_tokens(5, 257, 0), pseudo_tokens(20, 257, 0), 3); },
      {"train", "5 tokens", "3 shards"});
  expect_error(
      [&] { write_sharded_tokens(tmp.file("b"), kMeta, pseudo_tokens(50, 257, 0), pseudo_tokens(20, 257, 0), 0); },
      {"shard count"});
  EXPECT_FALSE(std::filesystem::exists(tmp.file("a") + "/manifest.json"));
}

TEST(ShardedTokens, ReaderErrors) {
  TempDir tmp;
  auto train = pseudo_tokens(90, 257, 9), val = pseudo_tokens(30, 257, 10);
  const std::string dir = tmp.file("ds");
  const std::string manifest = dir + "/manifest.json";

  // Missing manifest (e.g. an interrupted writer).
  std::filesystem::create_directories(dir);
  write_token_dataset(dir + "/train-00000.h5", kMeta, train, {});
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); }, {"manifest.json", "not found"});
  expect_error([&] { ShardedTokenWindows(tmp.file("nope"), "train", 4, 257); }, {"nope", "not found"});

  write_sharded_tokens(dir, kMeta, train, val, 3);
  auto good = load_json(manifest);

  // Bad JSON, wrong format, wrong version, missing field.
  std::ofstream(manifest) << "{ not json";
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); }, {"manifest.json", "JSON"});
  auto j = good;
  j["format"] = "strata-tokens";
  save_json(manifest, j);
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); }, {"manifest.json", "'format'", "strata-dataset"});
  j = good;
  j["format_version"] = 2;
  save_json(manifest, j);
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); }, {"manifest.json", "'format_version'", "2"});
  j = good;
  j["splits"]["val"][1].erase("tokens");
  save_json(manifest, j);
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); },
               {"manifest.json", "splits.val[1].tokens", "missing"});

  // Token count in the manifest disagreeing with the shard.
  j = good;
  j["splits"]["train"][1]["tokens"] = 5;
  save_json(manifest, j);
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); },
               {"manifest.json", "splits.train[1].tokens", "train-00001.h5", "30"});

  // Missing shard file.
  save_json(manifest, good);
  std::filesystem::rename(dir + "/val-00002.h5", dir + "/moved.h5");
  expect_error([&] { ShardedTokenWindows(dir, "val", 4, 257); }, {"val-00002.h5", "not found"});
  std::filesystem::rename(dir + "/moved.h5", dir + "/val-00002.h5");
  ShardedTokenWindows ok(dir, "val", 4, 257);

  // Corrupted shard: rewritten with one changed id (same length) -> checksum mismatch naming the shard.
  auto piece = std::vector<uint32_t>(train.begin() + 30, train.begin() + 60);
  piece[7] = (piece[7] + 1) % 257;
  write_token_dataset(dir + "/train-00001.h5", kMeta, piece, {});
  expect_error([&] { ShardedTokenWindows(dir, "train", 4, 257); },
               {"checksum mismatch", "train-00001.h5", "splits.train[1].xxh64"});
  // Without verification it opens (and reads the changed id).
  ShardedTokenWindows unchecked(dir, "train", 4, 257, false);
  int32_t x[4], y[4];
  unchecked.read_window(9, x, y);  // tokens 36..40: index 37 is piece[7]
  EXPECT_EQ(x[1], static_cast<int32_t>(piece[7]));
}

TEST(ShardedTokens, BatchReadsEqualWindowByWindowReads) {
  // Shards of uneven sizes (some smaller than a window), windows in random order with repeats and neighbours:
  // read_windows (one HDF5 read per shard) must give exactly what read_window gives, for both readers.
  TempDir tmp;
  const int T = 7;
  auto train = pseudo_tokens(500, 257, 11), val = pseudo_tokens(40, 257, 12);
  write_sharded_tokens(tmp.file("ds"), kMeta, train, val, 9);
  write_token_dataset(tmp.file("one.h5"), kMeta, train, val);
  ShardedTokenWindows sharded(tmp.file("ds"), "train", T, 257);
  TokenWindows single(tmp.file("one.h5"), "train", T, 257);
  std::vector<int64_t> windows{3, 4, 5, 70, 0, 70, 12, 2, 13, sharded.num_windows() - 1, 33, 34, 1};
  for (const WindowSource* source :
       {static_cast<const WindowSource*>(&sharded), static_cast<const WindowSource*>(&single)}) {
    std::vector<int32_t> bx(windows.size() * T), by(windows.size() * T), x(T), y(T);
    source->read_windows(windows, bx.data(), by.data());
    for (size_t j = 0; j < windows.size(); ++j) {
      source->read_window(windows[j], x.data(), y.data());
      for (int t = 0; t < T; ++t) {
        ASSERT_EQ(bx[j * T + t], x[t]) << source->describe() << " window " << windows[j];
        ASSERT_EQ(by[j * T + t], y[t]) << source->describe() << " window " << windows[j];
        ASSERT_EQ(x[t], int32_t(train[size_t(windows[j] * T + t)]));
      }
    }
    EXPECT_THROW(source->read_windows({0, source->num_windows()}, bx.data(), by.data()), Error);
  }
}

}  // namespace
}  // namespace strata::data
