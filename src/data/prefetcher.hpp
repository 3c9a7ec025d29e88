#pragma once
// Reads the next batches in a background thread so the step loop does not wait on I/O (DESIGN.md principle 9).
// Batches are produced strictly in step order by one worker into a ring of `depth` slots; next() hands them out
// in the same order and measures how long it blocked (the "data wait" the trainer reports). depth 0 reads in
// next() itself (no thread), which tests use as the reference. HDF5 calls from the worker are serialised with
// every other HDF5 call in the process (hdf5_mutex, core/error.hpp).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace strata::data {

template <class Batch>
class Prefetcher {
 public:
  using Fill = std::function<void(int64_t step, Batch& out)>;

  // depth = batches read ahead of the one in use (depth + 1 slots).
  // fill(step, out) is called for first_step, first_step+1, ... (each exactly once, in order); slots are copies
  // of `prototype` (sized buffers, so filling never allocates).
  Prefetcher(Fill fill, const Batch& prototype, int64_t first_step, int depth)
      : fill_(std::move(fill)),
        slots_(size_t(depth > 0 ? depth + 1 : 1), prototype),
        next_step_(first_step),
        produce_step_(first_step),
        depth_(depth) {
    if (depth_ > 0) worker_ = std::thread([this] { run(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The batch of the next step; valid until the following call. Rethrows an error raised while reading it.
  const Batch& next() {
    const auto start = std::chrono::steady_clock::now();
    const Batch* out;
    if (depth_ == 0) {
      fill_(next_step_, slots_[0]);
      out = &slots_[0];
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      if (handed_out_) {  // the caller is done with the previous batch: its slot may be refilled
        handed_out_ = false;
        ++consumed_;
        changed_.notify_all();
      }
      changed_.wait(lock, [&] { return produced_ > consumed_ || error_; });
      if (produced_ == consumed_ && error_) std::rethrow_exception(error_);
      out = &slots_[size_t(consumed_ % int64_t(slots_.size()))];
      handed_out_ = true;
    }
    ++next_step_;
    last_wait_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    total_wait_ms_ += last_wait_ms_;
    return *out;
  }

  double last_wait_ms() const { return last_wait_ms_; }
  double total_wait_ms() const { return total_wait_ms_; }

 private:
  void run() {
    for (;;) {
      int64_t slot;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        // A slot is free when fewer than `depth` batches are filled and not yet released by the consumer.
        changed_.wait(lock, [&] { return stop_ || produced_ - consumed_ < int64_t(slots_.size()); });
        if (stop_) return;
        slot = produced_ % int64_t(slots_.size());
      }
      try {
        fill_(produce_step_, slots_[size_t(slot)]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        changed_.notify_all();
        return;
      }
      ++produce_step_;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++produced_;
      }
      changed_.notify_all();
    }
  }

  Fill fill_;
  std::vector<Batch> slots_;
  int64_t next_step_, produce_step_;
  int depth_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t produced_ = 0, consumed_ = 0;  // batches filled / released by the consumer
  bool handed_out_ = false, stop_ = false;
  std::exception_ptr error_;
  double last_wait_ms_ = 0, total_wait_ms_ = 0;
  std::thread worker_;
};

}  // namespace strata::data
