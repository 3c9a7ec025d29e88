#pragma once
// Some windows of a split, renumbered 0 .. n-1: a cross-validation fold of the train split, or the folds trained on
// while it is held out (data/folds.hpp).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "data/window_source.hpp"

namespace strata::data {

class WindowSubset final : public WindowSource {
 public:
  // Window i is base's window members[i]; `note` is added to describe().
  WindowSubset(std::unique_ptr<WindowSource> base, std::vector<int64_t> members, std::string note)
      : base_(std::move(base)), members_(std::move(members)), note_(std::move(note)) {
    STRATA_CHECK(!members_.empty(), "{}: an empty selection{}", base_->describe(), note_);
    for (int64_t m : members_)
      STRATA_CHECK(m >= 0 && m < base_->num_windows(), "{}: selected window {} out of range [0, {})", base_->describe(),
                   m, base_->num_windows());
  }

  int64_t num_windows() const override { return int64_t(members_.size()); }
  int seq_len() const override { return base_->seq_len(); }
  void read_window(int64_t window, int32_t* x, int32_t* y) const override { base_->read_window(member(window), x, y); }
  void read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const override {
    std::vector<int64_t> mapped(windows.size());
    for (size_t j = 0; j < windows.size(); ++j) mapped[j] = member(windows[j]);
    base_->read_windows(mapped, x, y);
  }
  void check_all_token_ids() const override { base_->check_all_token_ids(); }
  std::string describe() const override { return base_->describe() + note_; }

 private:
  int64_t member(int64_t window) const {
    STRATA_CHECK(window >= 0 && window < num_windows(), "{}: window {} out of range [0, {})", describe(), window,
                 num_windows());
    return members_[size_t(window)];
  }

  std::unique_ptr<WindowSource> base_;
  std::vector<int64_t> members_;
  std::string note_;
};

}  // namespace strata::data
