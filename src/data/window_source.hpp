#pragma once
// The trainer reads training windows through this interface only, so that the sharded dataset (a directory of
// HDF5 shards plus a manifest, a later issue) can replace the single-file TokenWindows without touching callers.
#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

class WindowSource {
 public:
  virtual ~WindowSource() = default;
  // Number of whole windows of seq_len()+1 tokens in this split; windows overlap by one token.
  virtual int64_t num_windows() const = 0;
  virtual int seq_len() const = 0;
  // Fills x[seq_len] (inputs) and y[seq_len] (next-token targets, x shifted by one) for window
  // 0 <= window < num_windows(). Every id is checked against the model's vocabulary.
  virtual void read_window(int64_t window, int32_t* x, int32_t* y) const = 0;
  // A batch: row j of x[n*T] and y[n*T] is window windows[j] (any order, repeats allowed). Readers override it to
  // read all the batch's tokens with one HDF5 call per file instead of one per window.
  virtual void read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const {
    for (size_t j = 0; j < windows.size(); ++j)
      read_window(windows[j], x + j * size_t(seq_len()), y + j * size_t(seq_len()));
  }
  // Reads the whole split and checks every id against the model's vocabulary (the trainer calls it before
  // any work, so a bad id is reported up front, naming the file and the index).
  virtual void check_all_token_ids() const = 0;
  // For error messages: "file: split".
  virtual std::string describe() const = 0;
};

}  // namespace strata::data
