#include "nn/param_buffer.hpp"

#include "core/error.hpp"
#include "core/rng.hpp"

namespace strata {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

int64_t TensorSpec::global_numel() const {
  int64_t n = 1;
  for (auto d : global_shape) n *= d;
  return n;
}

TensorSpec tensor_spec(std::string name, std::vector<int64_t> global_shape, InitKind init, double init_std, int split,
                       int tp_rank, int tp_size, int blocks) {
  TensorSpec spec;
  spec.name = std::move(name);
  spec.global_shape = spec.shape = std::move(global_shape);
  if (split >= 0) spec.shape[size_t(split)] /= tp_size;
  spec.init = init;
  spec.init_std = init_std;
  spec.decay = spec.shape.size() >= 2;
  spec.shard = ShardMap{split, blocks, tp_rank, tp_size, spec.shape[0], spec.numel() / spec.shape[0]};
  return spec;
}

template <class T>
ParamBuffer<T>::ParamBuffer(std::vector<TensorSpec> specs, size_t pad_multiple) : specs_(std::move(specs)) {
  STRATA_CHECK(pad_multiple >= 1, "ParamBuffer: pad_multiple must be >= 1");
  int64_t offset = 0;
  for (auto& s : specs_) {
    s.offset = offset;
    offset += s.numel();
  }
  size_ = size_t(offset);
  const size_t padded = (size_ + pad_multiple - 1) / pad_multiple * pad_multiple;
  params_ = Vec<T>("strata::params", padded);  // Kokkos zero-fills: the padding stays 0
  grads_ = Vec<T>("strata::grads", padded);
}

template <class T>
int ParamBuffer<T>::index_of(const std::string& name) const {
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return int(i);
  STRATA_FAIL("no parameter tensor named '{}'", name);
}

template <class T>
void ParamBuffer<T>::initialize(uint64_t seed) {
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto& s = specs_[i];
    auto p = param(int(i));
    const uint64_t key = rng::make_key(seed, s.name);
    const double std = s.init_std;
    const ShardMap shard = s.shard;
    switch (s.init) {
      case InitKind::Zeros: Kokkos::deep_copy(p, T(0)); break;
      case InitKind::Ones: Kokkos::deep_copy(p, T(1)); break;
      case InitKind::Normal:
        Kokkos::parallel_for(
            "strata::param_buffer::init_normal", range(p.extent(0)),
            KOKKOS_LAMBDA(const int64_t j) { p(j) = T(std * rng::normal(key, uint64_t(shard.global_index(j)))); });
        break;
    }
  }
  zero_grads();
}

template <class T>
void ParamBuffer<T>::zero_grads() {
  Kokkos::deep_copy(grads_, T(0));
}

template class ParamBuffer<float>;
template class ParamBuffer<double>;

}  // namespace strata
