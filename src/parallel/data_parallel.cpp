#include "parallel/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "core/error.hpp"
#include "core/stopwatch.hpp"
#include "kernels/grad_norm.hpp"
#include "kernels/pruning.hpp"
#include "kernels/regularization.hpp"
#include "parallel/buckets.hpp"

namespace strata {

std::vector<char> norm_flags(const std::vector<TensorSpec>& specs, int tp_rank) {
  std::vector<char> in_norm;
  for (const auto& s : specs) in_norm.push_back(!(s.shard.replicated() && tp_rank != 0) && !s.tied_copy);
  return in_norm;
}

template <class T>
DataParallel<T>::DataParallel(Communicator& dp, Communicator& dp_host, std::vector<Communicator*> norm_groups,
                              std::vector<char> in_norm, ParamBuffer<T>& params, const TrainConfig& train,
                              const ParallelConfig& parallel)
    : dp_(dp),
      dp_host_(dp_host),
      in_norm_(std::move(in_norm)),
      l1_(train.l1),
      l2_(train.l2),
      params_(params),
      zero1_(parallel.zero1 && dp.size() > 1) {
  for (auto* g : norm_groups)
    if (g && g->size() > 1) norm_groups_.push_back(g);
  if (in_norm_.empty()) in_norm_.assign(params.specs().size(), 1);
  STRATA_CHECK(in_norm_.size() == params.specs().size(), "DataParallel: {} norm flags for {} tensors", in_norm_.size(),
               params.specs().size());
  for (const auto& spec : params.specs()) regularized_.push_back(train.regularize == "all" || spec.decay);
  const int64_t padded = int64_t(params.padded_size());
  const int64_t bucket = bucket_elements(parallel.bucket_mb, sizeof(T));
  if (zero1_) {
    shard_size_ = shard_size(padded, dp.size());
    shard_begin_ = shard_size_ * dp.rank();
    shard_grads_ = Vec<T>("strata::zero1::shard_grads", size_t(shard_size_));
    optimizer_ = std::make_unique<AdamW<T>>(train, params.specs(), shard_begin_, shard_begin_ + shard_size_);
  } else {
    optimizer_ = std::make_unique<AdamW<T>>(train, params.specs(), 0, int64_t(params.size()));
  }
  // Buckets over the buffer (ZeRO-1: the padded buffer the shards tile), from its end backwards, the order in
  // which backward completes them. ZeRO-1 reduce-scatters each bucket: rank r receives the part of the bucket
  // inside its shard.
  buckets_ = gradient_buckets(zero1_ ? padded : int64_t(params.size()), bucket);
  if (zero1_)
    for (const auto& [begin, end] : buckets_)
      bucket_counts_.push_back(bucket_shard_counts(begin, end, shard_size_, dp.size()));
}

template <class T>
template <class F>
void DataParallel<T>::for_each_tensor_in(int64_t begin, int64_t end, F f) const {
  for (size_t i = 0; i < params_.specs().size(); ++i) {
    const auto& s = params_.specs()[i];
    const int64_t b = std::max(begin, s.offset), e = std::min(end, s.offset + s.numel());
    if (b < e) f(i, b, e);
  }
}

template <class T>
double DataParallel<T>::squares(const Vec<T>& g, int64_t g_begin, int64_t begin, int64_t end) const {
  double total = 0;
  for_each_tensor_in(begin, end, [&](size_t i, int64_t b, int64_t e) {
    if (in_norm_[i]) total += sum_of_squares<T>(view_of(g.data() + (b - g_begin), size_t(e - b)), size_t(e - b));
  });
  return total;
}

template <class T>
void DataParallel<T>::set_anchor(Vec<T> anchor, double l2) {
  STRATA_CHECK(anchor.extent(0) == params_.size(), "data parallel: an anchor of {} values for a buffer of {}",
               anchor.extent(0), params_.size());
  anchor_ = std::move(anchor);
  anchor_l2_ = l2;
}

template <class T>
void DataParallel<T>::set_mask(Vec<float> mask) {
  STRATA_CHECK(mask.extent(0) == params_.size(), "data parallel: a pruning mask of {} values for a buffer of {}",
               mask.extent(0), params_.size());
  mask_ = std::move(mask);
}

template <class T>
double DataParallel<T>::add_penalty(const Vec<T>& g, int64_t g_begin, int64_t begin, int64_t end) const {
  double total = 0;
  for_each_tensor_in(begin, end, [&](size_t i, int64_t b, int64_t e) {
    const auto w = view_of(params_.params().data() + b, size_t(e - b));
    const auto grad = view_of(g.data() + (b - g_begin), size_t(e - b));
    if (anchor_l2_ > 0) {  // every tensor is pulled toward the weights training started from
      const auto a = view_of(anchor_.data() + b, size_t(e - b));
      if (in_norm_[i]) total += anchor_penalty<T>(w, a, size_t(e - b), anchor_l2_);
      add_anchor_gradient<T>(grad, w, a, size_t(e - b), T(anchor_l2_));
    }
    if (!regularized_[i] || (l1_ == 0 && l2_ == 0)) return;
    if (in_norm_[i]) total += penalty<T>(w, size_t(e - b), l1_, l2_);
    add_penalty_gradient<T>(grad, w, size_t(e - b), T(l1_), T(l2_));
  });
  return total;
}

template <class T>
void DataParallel<T>::sum_over_norm_groups(double& sq) const {
  for (auto* g : norm_groups_) g->all_reduce_sum(&sq, 1);
}

template <class T>
void DataParallel<T>::launch_ready(int64_t ready_from) {
  if (dp_.size() == 1) return;
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].first >= ready_from) {
    const size_t i = next_bucket_++;
    const auto [b, e] = buckets_[i];
    T* grads = params_.grads().data();
    if (zero1_) {
      // This rank's part of the bucket lands at its place in the shard (nothing when the bucket misses it).
      // Clamped so that a bucket wholly after the shard (count 0) still passes a pointer inside the buffer.
      T* into = shard_grads_.data() + std::min(std::max(b, shard_begin_) - shard_begin_, shard_size_);
      pending_.push_back(dp_.reduce_scatter_sum_async(grads + b, into, bucket_counts_[i].data()));
    } else {
      pending_.push_back(dp_.all_reduce_sum_async(grads + b, size_t(e - b)));
    }
  }
  for (auto& r : pending_) dp_.test(r);  // lets MPI progress the buckets already in flight
}

template <class T>
GradReadyHook DataParallel<T>::ready_hook() {
  next_bucket_ = 0;
  return [this](int64_t ready_from) { launch_ready(ready_from); };
}

template <class T>
double DataParallel<T>::finish_step(double lr, double max_norm) {
  const double norm = reduce_gradients();
  apply_update(lr, max_norm);
  return norm;
}

template <class T>
double DataParallel<T>::reduce_gradients() {
  const auto start = Clock::now();
  launch_ready(0);
  dp_.wait_all(pending_);
  pending_.clear();
  next_bucket_ = 0;
  const bool regularize = l1_ != 0 || l2_ != 0 || anchor_l2_ > 0;
  if (!zero1_) {
    comm_wait_ms_ = ms_since(start);
    if (regularize) {
      last_penalty_ = add_penalty(params_.grads(), 0, 0, int64_t(params_.size()));
      sum_over_norm_groups(last_penalty_);
    }
    if (mask_.extent(0) > 0) apply_mask<T>(params_.grads(), mask_, params_.size());
    double sq = squares(params_.grads(), 0, 0, int64_t(params_.size()));
    sum_over_norm_groups(sq);
    norm_ = std::sqrt(sq);
    return norm_;
  }
  // ZeRO-1: the shard's gradients were reduce-scattered bucket by bucket during backward.
  if (regularize) {
    last_penalty_ = add_penalty(shard_grads_, shard_begin_, shard_begin_, shard_begin_ + shard_size_);
    dp_host_.all_reduce_sum(&last_penalty_, 1);
    sum_over_norm_groups(last_penalty_);
  }
  const int64_t masked = masked_in_shard();
  if (masked > 0) apply_mask<T>(shard_grads_, shard_mask(), size_t(masked));
  double sq = squares(shard_grads_, shard_begin_, shard_begin_, shard_begin_ + shard_size_);
  dp_host_.all_reduce_sum(&sq, 1);
  sum_over_norm_groups(sq);
  comm_wait_ms_ = ms_since(start);
  norm_ = std::sqrt(sq);
  return norm_;
}

template <class T>
int64_t DataParallel<T>::masked_in_shard() const {
  // The shard may reach into the buffer's padding, which has no mask.
  return mask_.extent(0) > 0 ? std::max<int64_t>(0, std::min(shard_size_, int64_t(params_.size()) - shard_begin_)) : 0;
}

template <class T>
Vec<float> DataParallel<T>::shard_mask() const {
  const int64_t masked = masked_in_shard();
  return view_of(mask_.data() + (masked > 0 ? shard_begin_ : 0), size_t(masked));
}

template <class T>
void DataParallel<T>::apply_update(double lr, double max_norm) {
  const double coef = max_norm / (norm_ + 1e-6);
  if (!zero1_) {
    if (max_norm > 0 && coef < 1.0) scale_in_place<T>(params_.grads(), params_.size(), T(coef));
    optimizer_->step(params_.params(), params_.grads(), lr);
    if (mask_.extent(0) > 0) apply_mask<T>(params_.params(), mask_, params_.size());
    return;
  }
  if (max_norm > 0 && coef < 1.0) scale_in_place<T>(shard_grads_, size_t(shard_size_), T(coef));
  optimizer_->step(params_.params(), shard_grads_, lr);
  T* all = params_.params().data();
  const int64_t masked = masked_in_shard();
  if (masked > 0) apply_mask<T>(view_of(all + shard_begin_, size_t(masked)), shard_mask(), size_t(masked));
  const auto gather = Clock::now();
  dp_.all_gather(all + shard_begin_, all, size_t(shard_size_));
  comm_wait_ms_ += ms_since(gather);
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace strata
