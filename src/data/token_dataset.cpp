#include "data/token_dataset.hpp"

#include <algorithm>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "data/shard_reads.hpp"

namespace strata::data {
namespace {
std::string tokens_name(const std::string& split) { return split + "/tokens"; }

// Length of `split`/tokens after checking that it exists, is 1-D and stores integers.
int64_t checked_split_length(hid_t file, const std::string& path, const std::string& split) {
  std::string name = tokens_name(split);
  STRATA_CHECK(h5::exists(file, name),
               "{}: dataset '{}' is missing (a token dataset needs train/tokens and val/tokens)", path, name);
  auto shape = h5::dataset_shape(file, name, path);
  STRATA_CHECK(shape.size() == 1, "{}: dataset '{}' has {} dimensions, expected a 1-D array of token ids", path, name,
               shape.size());
  h5::Handle ds(STRATA_H5(H5Dopen2(file, name.c_str(), H5P_DEFAULT)), H5Dclose);
  h5::Handle type(STRATA_H5(H5Dget_type(ds)), H5Tclose);
  STRATA_CHECK(STRATA_H5(H5Tget_class(type)) == H5T_INTEGER,
               "{}: dataset '{}' does not store integers (token ids must be an integer type, e.g. uint16)", path, name);
  return static_cast<int64_t>(shape[0]);
}
}  // namespace

TokenDatasetInfo inspect_token_dataset(const std::string& path) {
  std::error_code ec;
  STRATA_CHECK(std::filesystem::is_regular_file(path, ec), "'{}': token dataset file not found", path);
  auto file = h5::open_file(path);
  TokenDatasetInfo info;
  info.path = path;
  STRATA_CHECK(h5::has_attr(file, "format"),
               "{}: root attribute 'format' is missing, expected '{}' (not a Strata token dataset?)", path,
               kTokenFormat);
  std::string format = h5::read_attr_string(file, "format", path);
  STRATA_CHECK(format == kTokenFormat, "{}: root attribute 'format' is '{}', expected '{}'", path, format,
               kTokenFormat);
  int64_t version = h5::read_attr_int(file, "format_version", path);
  STRATA_CHECK(version == kTokenFormatVersion, "{}: root attribute 'format_version' is {}, this build reads version {}",
               path, version, kTokenFormatVersion);
  info.vocab_size = h5::read_attr_int(file, "vocab_size", path);
  STRATA_CHECK(info.vocab_size > 0 && info.vocab_size <= std::numeric_limits<int32_t>::max(),
               "{}: root attribute 'vocab_size' is {}, expected 1 .. 2^31-1", path, info.vocab_size);
  info.eot_id = h5::read_attr_int(file, "eot_id", path);
  STRATA_CHECK(info.eot_id >= 0 && info.eot_id < info.vocab_size,
               "{}: root attribute 'eot_id' is {}, expected 0 <= eot_id < vocab_size {}", path, info.eot_id,
               info.vocab_size);
  info.tokenizer = h5::read_attr_string(file, "tokenizer", path);
  if (h5::has_attr(file, "tokenizer_json")) info.tokenizer_json = h5::read_attr_string(file, "tokenizer_json", path);
  info.train_tokens = checked_split_length(file, path, "train");
  info.val_tokens = checked_split_length(file, path, "val");
  return info;
}

TokenWindows::TokenWindows(const std::string& path, const std::string& split, int seq_len, int64_t model_vocab_size)
    : path_(path), split_(split), seq_len_(seq_len), model_vocab_size_(model_vocab_size) {
  STRATA_CHECK(split == "train" || split == "val", "{}: split '{}' is not 'train' or 'val'", path, split);
  STRATA_CHECK(seq_len > 0, "{}: {}: model.seq_len must be > 0, got {}", path, split, seq_len);
  STRATA_CHECK(model_vocab_size > 0, "{}: model.vocab_size must be > 0, got {}", path, model_vocab_size);
  info_ = inspect_token_dataset(path);
  STRATA_CHECK(
      info_.vocab_size <= model_vocab_size,
      "{}: root attribute 'vocab_size' is {} but model.vocab_size is {}: the model cannot embed every token id "
      "of this dataset (set model.vocab_size >= {})",
      path, info_.vocab_size, model_vocab_size, info_.vocab_size);
  num_tokens_ = split == "train" ? info_.train_tokens : info_.val_tokens;
  num_windows_ = num_tokens_ > 0 ? (num_tokens_ - 1) / seq_len : 0;
  STRATA_CHECK(num_windows_ > 0,
               "{}: {}: {} holds {} tokens, fewer than seq_len+1 = {} needed for one window (model.seq_len {})", path,
               split, tokens_name(split), num_tokens_, int64_t{seq_len} + 1, seq_len);
  bytes_ = shard_bytes(path);
  file_ = h5::open_file(path);
  dataset_ = h5::Handle(STRATA_H5(H5Dopen2(file_, tokens_name(split).c_str(), H5P_DEFAULT)), H5Dclose);
  stored_type_ = h5::element_type_name(dataset_);
}

void TokenWindows::check_all_token_ids() const {
  constexpr hsize_t kChunk = 1 << 20;
  std::vector<int64_t> buf;
  for (hsize_t offset = 0; offset < hsize_t(num_tokens_); offset += kChunk) {
    const hsize_t count = std::min<hsize_t>(kChunk, hsize_t(num_tokens_) - offset);
    buf.resize(count);
    read_token_ids(dataset_, stored_type_, offset, count, buf.data());
    for (hsize_t i = 0; i < count; ++i) check_id(buf[i], offset + i);
  }
}

void TokenWindows::check_id(int64_t id, hsize_t index) const {
  if (id < 0 || id >= model_vocab_size_) {
    STRATA_FAIL("{}: {}: token id {} at index {} {}", path_, tokens_name(split_), id, index,
                id < 0 ? std::string("is negative") : fmt::format(">= model.vocab_size {}", model_vocab_size_));
  }
}

void TokenWindows::read_window(int64_t window, int32_t* x, int32_t* y) const { read_windows({window}, x, y); }

namespace {
// Calls read(raw) with a buffer of the stored id type (HDF5 then copies without converting) and widens into out;
// other integer types go through HDF5's conversion straight into out.
template <class Read>
void read_stored(const std::string& stored_type, size_t count, int64_t* out, Read read) {
  auto widened = [&](auto tag) {
    using Stored = decltype(tag);
    thread_local std::vector<Stored> raw;
    raw.resize(count);
    read(raw.data());
    for (size_t i = 0; i < count; ++i) out[i] = static_cast<int64_t>(raw[i]);
  };
  if (stored_type == "uint16")
    widened(uint16_t{});
  else if (stored_type == "uint32")
    widened(uint32_t{});
  else if (stored_type == "int32")
    widened(int32_t{});
  else
    read(out);
}
}  // namespace

void read_token_ids(hid_t dataset, const std::string& stored_type, hsize_t offset, hsize_t count, int64_t* out) {
  read_stored(stored_type, size_t(count), out, [&](auto* buf) { h5::read_range(dataset, offset, count, buf); });
}

void read_token_positions(hid_t dataset, const std::string& stored_type, const std::vector<hsize_t>& positions,
                          int64_t* out) {
  read_stored(stored_type, positions.size(), out, [&](auto* buf) { h5::read_rows(dataset, positions, buf); });
}

std::vector<hsize_t> window_positions(const std::vector<int64_t>& windows, int seq_len) {
  std::vector<int64_t> starts(windows);
  std::sort(starts.begin(), starts.end());
  std::vector<hsize_t> positions;
  positions.reserve(starts.size() * size_t(seq_len + 1));
  for (int64_t w : starts) {
    const hsize_t first = hsize_t(w) * hsize_t(seq_len), last = first + hsize_t(seq_len);
    hsize_t p = positions.empty() || positions.back() < first ? first : positions.back() + 1;
    for (; p <= last; ++p) positions.push_back(p);
  }
  return positions;
}

void scatter_windows(const std::vector<int64_t>& windows, int seq_len, const std::vector<hsize_t>& positions,
                     const int64_t* ids, int32_t* x, int32_t* y) {
  for (size_t j = 0; j < windows.size(); ++j) {
    const hsize_t first = hsize_t(windows[j]) * hsize_t(seq_len);
    // The window's positions are consecutive and all present, so they are consecutive in `positions` too.
    const size_t at = size_t(std::lower_bound(positions.begin(), positions.end(), first) - positions.begin());
    for (int t = 0; t < seq_len; ++t) {
      x[j * size_t(seq_len) + size_t(t)] = static_cast<int32_t>(ids[at + size_t(t)]);
      y[j * size_t(seq_len) + size_t(t)] = static_cast<int32_t>(ids[at + size_t(t) + 1]);
    }
  }
}

void TokenWindows::read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const {
  for (int64_t w : windows)
    STRATA_CHECK(w >= 0 && w < num_windows_, "{}: {}: window {} out of range [0, {})", path_, split_, w, num_windows_);
  const auto positions = window_positions(windows, seq_len_);
  std::vector<int64_t> ids(positions.size());
  read_shard(path_, bytes_, [&] { read_token_positions(dataset_, stored_type_, positions, ids.data()); });
  for (size_t i = 0; i < ids.size(); ++i) check_id(ids[i], positions[i]);
  scatter_windows(windows, seq_len_, positions, ids.data(), x, y);
}

void load_batch(const WindowSource& source, const BatchSampler& sampler, int64_t step, int32_t* x, int32_t* y) {
  STRATA_CHECK(sampler.num_windows() == source.num_windows(),
               "{}: sampler built for {} windows but the split has {} (seq_len or dataset changed?)", source.describe(),
               sampler.num_windows(), source.num_windows());
  const int64_t T = source.seq_len();
  auto windows = sampler.windows_for_step(step);
  for (size_t j = 0; j < windows.size(); ++j) source.read_window(windows[j], x + j * T, y + j * T);
}

}  // namespace strata::data
