#include "data/token_dataset.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/token_writer.hpp"
#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;

std::vector<uint32_t> iota_tokens(size_t n, uint32_t mod = 257) {
  std::vector<uint32_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint32_t>(i % mod);
  return v;
}

// Writes a token file by hand (any element type, any attributes) to produce what other tools might write.
template <class T>
std::string write_raw(const TempDir& dir, const std::string& name, const std::vector<T>& train,
                      const std::vector<T>& val, int64_t vocab = 257, const std::string& format = "strata-tokens",
                      int64_t version = 1) {
  std::string path = dir.file(name);
  auto file = h5::create_file(path);
  h5::write_attr(file, "format", format);
  h5::write_attr(file, "format_version", version);
  h5::write_attr(file, "vocab_size", vocab);
  h5::write_attr(file, "eot_id", int64_t{vocab - 1});
  h5::write_attr(file, "tokenizer", std::string("byte"));
  auto g1 = h5::create_group(file, "train");
  h5::write_dataset<T>(g1, "tokens", {train.size()}, train.data());
  auto g2 = h5::create_group(file, "val");
  h5::write_dataset<T>(g2, "tokens", {val.size()}, val.data());
  return path;
}

TEST(TokenDataset, InspectReportsAttributesAndLengths) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(101), iota_tokens(33));
  auto info = inspect_token_dataset(path);
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.vocab_size, 257);
  EXPECT_EQ(info.eot_id, 256);
  EXPECT_EQ(info.tokenizer, "byte");
  EXPECT_EQ(info.train_tokens, 101);
  EXPECT_EQ(info.val_tokens, 33);
  // Small vocabularies are stored as uint16 (the format's promise to readers such as h5py).
  auto file = h5::open_file(path);
  h5::Handle ds(H5Dopen2(file, "train/tokens", H5P_DEFAULT), H5Dclose);
  h5::Handle type(H5Dget_type(ds), H5Tclose);
  EXPECT_EQ(H5Tget_size(type), 2u);
  EXPECT_EQ(H5Tget_sign(type), H5T_SGN_NONE);
  EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(path)));
}

TEST(TokenDataset, LargeVocabularyStoredAsUint32) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  std::vector<uint32_t> train{70000, 1, 69999, 5}, val{0, 65536};
  write_token_dataset(path, {70001, 70000, "bpe"}, train, val);
  TokenWindows w(path, "train", 3, 70001);
  int32_t x[3], y[3];
  w.read_window(0, x, y);
  EXPECT_EQ(x[0], 70000);
  EXPECT_EQ(x[2], 69999);
  EXPECT_EQ(y[2], 5);
}

TEST(TokenDataset, WindowsAreShiftedByOne) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(21), iota_tokens(9));
  TokenWindows w(path, "train", 4, 257);
  EXPECT_EQ(w.num_windows(), 5);  // (21 - 1) / 4
  EXPECT_EQ(w.seq_len(), 4);
  for (int64_t k = 0; k < w.num_windows(); ++k) {
    int32_t x[4], y[4];
    w.read_window(k, x, y);
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(x[t], k * 4 + t);
      EXPECT_EQ(y[t], k * 4 + t + 1);
    }
  }
  TokenWindows v(path, "val", 4, 257);
  EXPECT_EQ(v.num_windows(), 2);  // (9 - 1) / 4
  // One token short of a third window: 20 tokens give (20 - 1) / 4 = 4.
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(20), iota_tokens(9));
  EXPECT_EQ(TokenWindows(path, "train", 4, 257).num_windows(), 4);
  int32_t x[4], y[4];
  EXPECT_THROW(w.read_window(5, x, y), Error);
  EXPECT_THROW(w.read_window(-1, x, y), Error);
}

TEST(BatchSampler, SequentialOrderWrapsAcrossEpochs) {
  BatchSampler s(5, 2, /*shuffle=*/false, 123);
  EXPECT_EQ(s.windows_for_step(0), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(s.windows_for_step(1), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(s.windows_for_step(2), (std::vector<int64_t>{4, 0}));
  EXPECT_EQ(s.windows_for_step(3), (std::vector<int64_t>{1, 2}));
  BatchSampler big(3, 7, false, 0);  // batch larger than the split
  EXPECT_EQ(big.windows_for_step(1), (std::vector<int64_t>{1, 2, 0, 1, 2, 0, 1}));
  EXPECT_THROW(BatchSampler(0, 2, false, 0), Error);
  EXPECT_THROW(BatchSampler(5, 0, false, 0), Error);
  EXPECT_THROW(s.windows_for_step(-1), Error);
}

TEST(BatchSampler, ShuffledOrderIsAPermutationPerEpochAndPureInSeedAndEpoch) {
  const int64_t n = 50;
  const int B = 5;
  BatchSampler s(n, B, /*shuffle=*/true, 42);
  std::vector<std::vector<int64_t>> epochs(3);
  for (int64_t step = 0; step < 3 * n / B; ++step) {
    auto w = s.windows_for_step(step);
    auto& e = epochs[step * B / n];
    e.insert(e.end(), w.begin(), w.end());
  }
  std::vector<int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  for (int e = 0; e < 3; ++e) {
    auto sorted = epochs[e];
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identity) << "epoch " << e << " is not a permutation";
    EXPECT_NE(epochs[e], identity) << "epoch " << e << " is not shuffled";
    EXPECT_EQ(s.epoch_order(e), epochs[e]);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);

  // Pure function: a fresh sampler asked out of order (as after a resume) gives the same windows.
  BatchSampler again(n, B, true, 42);
  EXPECT_EQ(again.windows_for_step(25), s.windows_for_step(25));
  EXPECT_EQ(again.windows_for_step(3), s.windows_for_step(3));
  BatchSampler copy(again);
  EXPECT_EQ(copy.windows_for_step(17), s.windows_for_step(17));
  BatchSampler other(n, B, true, 43);
  EXPECT_NE(other.epoch_order(0), s.epoch_order(0));
  // A batch straddling an epoch boundary takes the end of one permutation and the start of the next.
  BatchSampler straddle(7, 3, true, 9);
  auto w = straddle.windows_for_step(2);  // global windows 6, 7, 8
  EXPECT_EQ(w[0], straddle.epoch_order(0)[6]);
  EXPECT_EQ(w[1], straddle.epoch_order(1)[0]);
  EXPECT_EQ(w[2], straddle.epoch_order(1)[1]);
}

TEST(BatchSampler, PermutationIsPinned) {
  // Resuming a run with a newer build must replay the same order: changing the generator breaks this on purpose.
  auto p = seeded_permutation(10, 42, 0);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(10);
  std::iota(identity.begin(), identity.end(), 0);
  ASSERT_EQ(sorted, identity);
  EXPECT_EQ(p, (std::vector<int64_t>{1, 6, 9, 4, 2, 3, 5, 0, 8, 7}));
}

TEST(TokenDataset, LoadBatchFillsRowsInSamplerOrder) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(41), iota_tokens(9));
  TokenWindows w(path, "train", 4, 257);  // 10 windows
  for (bool shuffle : {false, true}) {
    BatchSampler s(w.num_windows(), 3, shuffle, 7);
    std::vector<int32_t> x(12), y(12);
    load_batch(w, s, 4, x.data(), y.data());
    auto windows = s.windows_for_step(4);
    if (!shuffle) EXPECT_EQ(windows, (std::vector<int64_t>{2, 3, 4}));  // global 12, 13, 14 wrap to epoch 1
    for (int j = 0; j < 3; ++j) {
      for (int t = 0; t < 4; ++t) {
        EXPECT_EQ(x[j * 4 + t], windows[j] * 4 + t);
        EXPECT_EQ(y[j * 4 + t], windows[j] * 4 + t + 1);
      }
    }
  }
  BatchSampler wrong(9, 3, false, 0);
  std::vector<int32_t> x(12), y(12);
  expect_error([&] { load_batch(w, wrong, 0, x.data(), y.data()); }, {path, "9 windows", "10"});
}

TEST(TokenDataset, ReadsOtherIntegerTypes) {
  TempDir dir;
  std::vector<int32_t> train32{5, 6, 7, 8, 9, 10, 256}, val32{1, 2, 3};
  auto p32 = write_raw<int32_t>(dir, "i32.h5", train32, val32);
  TokenWindows w32(p32, "train", 3, 257);
  EXPECT_EQ(w32.num_windows(), 2);
  int32_t x[3], y[3];
  w32.read_window(1, x, y);
  EXPECT_EQ(std::vector<int32_t>(x, x + 3), (std::vector<int32_t>{8, 9, 10}));
  EXPECT_EQ(std::vector<int32_t>(y, y + 3), (std::vector<int32_t>{9, 10, 256}));

  std::vector<int64_t> train64{100, 200, 3}, val64{4, 5};
  auto p64 = write_raw<int64_t>(dir, "i64.h5", train64, val64);
  TokenWindows w64(p64, "train", 2, 300);
  w64.read_window(0, x, y);
  EXPECT_EQ(x[0], 100);
  EXPECT_EQ(x[1], 200);
  EXPECT_EQ(y[1], 3);

  // Signed files may hold negative ids: rejected, not clamped to 0.
  std::vector<int32_t> neg{1, 2, 3, 4, -5}, val{1, 2};
  auto pneg = write_raw<int32_t>(dir, "neg.h5", neg, val);
  TokenWindows wneg(pneg, "train", 2, 257);
  wneg.read_window(0, x, y);  // tokens 0..2
  expect_error([&] { wneg.read_window(1, x, y); }, {pneg, "train/tokens", "token id -5 at index 4 is negative"});
}

TEST(TokenDataset, RejectsTokenIdOutsideModelVocabulary) {
  TempDir dir;
  std::vector<uint16_t> train(20, 7), val{1, 2, 3};
  train[12] = 300;  // the file claims vocab_size 257
  auto path = write_raw<uint16_t>(dir, "x.h5", train, val);
  TokenWindows w(path, "train", 4, 257);
  int32_t x[4], y[4];
  w.read_window(0, x, y);  // indices 0..4 are fine
  expect_error([&] { w.read_window(3, x, y); },
               {path + ": train/tokens: token id 300 at index 12 >= model.vocab_size 257"});
  // Index 12 is also the last token of window 2 (its target).
  expect_error([&] { w.read_window(2, x, y); }, {"token id 300 at index 12"});
}

TEST(TokenDataset, RejectsModelVocabularySmallerThanFile) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(21), iota_tokens(9));
  expect_error([&] { TokenWindows(path, "train", 4, 100); }, {path, "'vocab_size' is 257", "model.vocab_size is 100"});
  EXPECT_NO_THROW(TokenWindows(path, "train", 4, 512));  // a larger model vocabulary is fine
}

TEST(TokenDataset, RejectsSplitTooShort) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  write_token_dataset(path, {257, 256, "byte"}, iota_tokens(100), iota_tokens(4));
  EXPECT_EQ(TokenWindows(path, "val", 3, 257).num_windows(), 1);
  expect_error([&] { TokenWindows(path, "val", 4, 257); }, {path, "val/tokens", "holds 4 tokens", "seq_len+1 = 5"});
  expect_error([&] { TokenWindows(path, "test", 4, 257); }, {path, "split 'test'"});
}

TEST(TokenDataset, RejectsMissingOrForeignFiles) {
  TempDir dir;
  expect_error([&] { inspect_token_dataset(dir.file("nope.h5")); }, {dir.file("nope.h5"), "not found"});
  expect_error([&] { TokenWindows(dir.file("nope.h5"), "train", 4, 257); }, {"nope.h5", "not found"});
  auto text = dir.write("text.h5", "hello, not HDF5\n");
  expect_error([&] { inspect_token_dataset(text); }, {text, "HDF5 file"});

  std::vector<uint16_t> t{1, 2, 3, 4, 5}, v{1, 2};
  auto fmt = write_raw<uint16_t>(dir, "fmt.h5", t, v, 257, "strata-images");
  expect_error([&] { inspect_token_dataset(fmt); }, {fmt, "'format' is 'strata-images', expected 'strata-tokens'"});
  auto ver = write_raw<uint16_t>(dir, "ver.h5", t, v, 257, "strata-tokens", 2);
  expect_error([&] { inspect_token_dataset(ver); }, {ver, "'format_version' is 2"});

  // No format attribute at all (some other HDF5 file).
  std::string bare = dir.file("bare.h5");
  { auto f = h5::create_file(bare); }
  expect_error([&] { inspect_token_dataset(bare); }, {bare, "'format' is missing"});

  // Missing split, 2-D split, float split.
  auto mk = [&](const std::string& name, auto write_val) {
    std::string path = dir.file(name);
    auto f = h5::create_file(path);
    h5::write_attr(f, "format", std::string("strata-tokens"));
    h5::write_attr(f, "format_version", int64_t{1});
    h5::write_attr(f, "vocab_size", int64_t{257});
    h5::write_attr(f, "eot_id", int64_t{256});
    h5::write_attr(f, "tokenizer", std::string("byte"));
    auto g = h5::create_group(f, "train");
    h5::write_dataset<uint16_t>(g, "tokens", {t.size()}, t.data());
    write_val(f);
    return path;
  };
  auto noval = mk("noval.h5", [](hid_t) {});
  expect_error([&] { inspect_token_dataset(noval); }, {noval, "'val/tokens' is missing"});
  auto twod = mk("twod.h5", [](hid_t f) {
    std::vector<uint16_t> m(6, 1);
    auto g = h5::create_group(f, "val");
    h5::write_dataset<uint16_t>(g, "tokens", {2, 3}, m.data());
  });
  expect_error([&] { inspect_token_dataset(twod); }, {twod, "'val/tokens' has 2 dimensions"});
  auto flt = mk("float.h5", [](hid_t f) {
    std::vector<float> m(6, 1.0f);
    auto g = h5::create_group(f, "val");
    h5::write_dataset<float>(g, "tokens", {6}, m.data());
  });
  expect_error([&] { inspect_token_dataset(flt); }, {flt, "'val/tokens' does not store integers"});
}

TEST(TokenDataset, WriterRejectsIdsOutsideVocabularyAndLeavesNoFile) {
  TempDir dir;
  std::string path = dir.file("d.h5");
  expect_error(
      [&] {
        write_token_dataset(path, {257, 256, "byte"}, {1, 2, 257}, {1, 2});
      },
      {"train/tokens", "token id 257 at index 2 >= vocab_size 257"});
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(strata::temporary_path(path)));
}

}  // namespace
}  // namespace strata::data
