#pragma once
// AdamW over a range [begin, end) of the contiguous parameter buffer: the whole buffer on one rank, or this
// rank's ZeRO-1 shard. Owns the two moment buffers for that range only. Weight decay applies to the
// elements of 2-D tensors (TensorSpec::decay), also where a shard cuts through a tensor.
#include <vector>

#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

template <class T>
class AdamW {
 public:
  AdamW(const TrainConfig& config, const std::vector<TensorSpec>& specs, int64_t begin, int64_t end);
  // params[begin, end) -= update from grads[0, end - begin) (the gradients of that range) at learning rate lr.
  void step(const Vec<T>& params, const Vec<T>& grads, double lr);
  long steps_taken() const { return step_; }
  // Checkpoints: the moments cover buffer range [begin(), end()); a restored optimizer continues bit for bit.
  const Vec<T>& m() const { return m_; }
  const Vec<T>& v() const { return v_; }
  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }
  void set_steps_taken(long steps) { step_ = steps; }
  size_t state_bytes() const { return 2 * m_.extent(0) * sizeof(T); }

 private:
  struct Segment {
    int64_t begin, end;  // absolute offsets in the parameter buffer
    bool decay;
  };
  TrainConfig config_;
  int64_t begin_, end_;
  std::vector<Segment> segments_;
  Vec<T> m_, v_;
  long step_ = 0;
};

}  // namespace strata
