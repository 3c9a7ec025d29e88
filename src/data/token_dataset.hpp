#pragma once
// Single-file token dataset (format: docs/dataset-format.md): inspection and one split read as windows.
#include <hdf5.h>

#include <cstdint>
#include <string>

#include "core/h5.hpp"
#include "data/batch_sampler.hpp"
#include "data/window_source.hpp"

namespace strata::data {

inline constexpr const char* kTokenFormat = "strata-tokens";
inline constexpr int64_t kTokenFormatVersion = 1;

struct TokenDatasetInfo {
  std::string path;
  int64_t vocab_size = 0, eot_id = 0;
  int64_t train_tokens = 0, val_tokens = 0;
  std::string tokenizer;
  std::string tokenizer_json;  // empty unless the dataset stores its tokenizer (BPE)
};

// Validates the file (HDF5, format/version attributes, vocab_size/eot_id, both splits 1-D integer) without
// reading tokens; throws strata::Error naming the file and the field.
TokenDatasetInfo inspect_token_dataset(const std::string& path);

// One split ("train" or "val") of a token file, seen as windows of seq_len+1 tokens. Keeps the dataset open.
// Not thread-safe (the HDF5 library is not built thread-safe): one reader per thread.
class TokenWindows : public WindowSource {
 public:
  TokenWindows(const std::string& path, const std::string& split, int seq_len, int64_t model_vocab_size);

  int64_t num_windows() const override { return num_windows_; }
  int seq_len() const override { return seq_len_; }
  void read_window(int64_t window, int32_t* x, int32_t* y) const override;
  void read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const override;
  std::string describe() const override { return path_ + ": " + split_; }

  // Reads the whole split in chunks and checks every id (the trainer calls it before any work, so a bad id
  // is reported up front rather than at the step that happens to read it).
  void check_all_token_ids() const override;

  const TokenDatasetInfo& info() const { return info_; }
  int64_t num_tokens() const { return num_tokens_; }

 private:
  void check_id(int64_t id, hsize_t index) const;
  std::string path_, split_;
  int seq_len_;
  int64_t model_vocab_size_;
  TokenDatasetInfo info_;
  int64_t num_tokens_ = 0, num_windows_ = 0;
  std::string stored_type_;
  uint64_t bytes_ = 0;         // the file's size when opened (data/shard_reads.hpp)
  h5::Handle file_, dataset_;  // declared in this order so the dataset closes before the file
};

// Reads ids [offset, offset+count) of a token dataset into out as int64. Ids stored as uint16, uint32, int32 or int64
// are read in their stored type (HDF5 then copies without converting; a converting read costs a 1 MiB buffer fill
// per call, which dominated window reads) and widened here; other integer types go through HDF5's conversion.
// stored_type: h5::element_type_name(dataset), computed once when the dataset is opened.
void read_token_ids(hid_t dataset, const std::string& stored_type, hsize_t offset, hsize_t count, int64_t* out);

// The token positions a batch of windows covers (window w: positions [w*T, w*T+T]), sorted and unique: adjacent
// windows share a token, so a batch reads each position once.
std::vector<hsize_t> window_positions(const std::vector<int64_t>& windows, int seq_len);
// Copies window windows[j] out of `ids` (the ids at `positions`, as window_positions returns) into row j of x and y.
void scatter_windows(const std::vector<int64_t>& windows, int seq_len, const std::vector<hsize_t>& positions,
                     const int64_t* ids, int32_t* x, int32_t* y);
// Reads ids at sorted unique `positions` of a token dataset into out, in the stored type (one HDF5 call).
void read_token_positions(hid_t dataset, const std::string& stored_type, const std::vector<hsize_t>& positions,
                          int64_t* out);

// Fills x[B*T] and y[B*T] (row j = window windows_for_step(step)[j]); B = sampler.batch(), T = source.seq_len().
void load_batch(const WindowSource& source, const BatchSampler& sampler, int64_t step, int32_t* x, int32_t* y);

}  // namespace strata::data
