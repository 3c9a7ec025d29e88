#pragma once
// Contiguous parameters (DESIGN.md principle 3): parameters and gradients each live in one buffer; a tensor
// is a named slice (offset, shape) of both. The optimizer keeps its state in buffers of its own (AdamW),
// so that ZeRO-1 can hold only its shard. The buffers may be padded with zeros at the end so that they
// split evenly over data-parallel ranks.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/common.hpp"
#include "nn/shard_map.hpp"

namespace strata {

enum class InitKind { Normal, Zeros, Ones };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;         // this rank's part
  std::vector<int64_t> global_shape;  // the whole tensor (as saved); equals shape without tensor parallelism
  ShardMap shard;                     // where this rank's part sits in the whole
  InitKind init = InitKind::Zeros;
  double init_std = 0;  // for Normal
  bool decay = false;   // AdamW weight decay applies (2-D weights)
  // Tied tensors are held by the first and the last pipeline stage (the GPT's token embedding, also its output
  // head) and kept equal by summing the two copies' gradients (parallel/tied_gradients.hpp). The last stage's is
  // the `tied_copy`: not saved, not counted twice in the gradient norm. With one stage there is one copy.
  bool tied = false, tied_copy = false;
  bool embedding = false;        // a lookup table (token or position embedding): magnitude pruning leaves it by default
  int64_t offset = 0;            // into the buffers, set by ParamBuffer
  int64_t numel() const;         // of this rank's part
  int64_t global_numel() const;  // of the whole tensor
};

// A tensor at its global shape, replicated (split -1) or split over tp_size ranks along dim 0 (split 0) or the
// flattened trailing dims (split 1), the split dimension made of `blocks` equal blocks each split separately; this
// rank's part is tp_rank's. Weights (rank >= 2) get weight decay; biases and norm parameters do not.
TensorSpec tensor_spec(std::string name, std::vector<int64_t> global_shape, InitKind init, double init_std,
                       int split = -1, int tp_rank = 0, int tp_size = 1, int blocks = 1);

template <class T>
class ParamBuffer {
 public:
  // pad_multiple: the buffers' length is rounded up to a multiple of it (the data-parallel size for ZeRO-1).
  explicit ParamBuffer(std::vector<TensorSpec> specs, size_t pad_multiple = 1);

  size_t size() const { return size_; }  // parameters, without padding
  size_t padded_size() const { return params_.extent(0); }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  int index_of(const std::string& name) const;  // throws if absent

  Vec<T> param(int i) const { return slice(params_, i); }
  Vec<T> grad(int i) const { return slice(grads_, i); }
  const Vec<T>& params() const { return params_; }
  const Vec<T>& grads() const { return grads_; }

  // Draws every tensor from the counter-based RNG keyed by (seed, name, global element index): any
  // tensor-parallel split holds exactly the values of the one-rank tensor.
  void initialize(uint64_t seed);
  void zero_grads();

 private:
  Vec<T> slice(const Vec<T>& all, int i) const {
    return view_of(all.data() + specs_[i].offset, size_t(specs_[i].numel()));
  }
  std::vector<TensorSpec> specs_;
  size_t size_ = 0;
  Vec<T> params_, grads_;
};

}  // namespace strata
