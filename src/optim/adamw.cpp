#include "optim/adamw.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "kernels/adamw.hpp"

namespace strata {

template <class T>
AdamW<T>::AdamW(const TrainConfig& config, const std::vector<TensorSpec>& specs, int64_t begin, int64_t end)
    : config_(config), begin_(begin), end_(end) {
  STRATA_CHECK(0 <= begin && begin <= end, "AdamW: bad range [{}, {})", begin, end);
  for (const auto& s : specs) {
    const int64_t b = std::max(begin, s.offset), e = std::min(end, s.offset + s.numel());
    if (b < e) segments_.push_back({b, e, s.decay});
  }
  m_ = Vec<T>("strata::adamw::m", size_t(end - begin));
  v_ = Vec<T>("strata::adamw::v", size_t(end - begin));
}

template <class T>
void AdamW<T>::step(const Vec<T>& params, const Vec<T>& grads, double lr) {
  ++step_;
  for (const auto& seg : segments_) {
    const size_t n = size_t(seg.end - seg.begin), local = size_t(seg.begin - begin_);
    const AdamWStep s{lr, config_.beta1, config_.beta2, config_.eps, seg.decay ? config_.weight_decay : 0.0, step_};
    adamw_update<T>(view_of(params.data() + seg.begin, n), view_of(grads.data() + local, n),
                    view_of(m_.data() + local, n), view_of(v_.data() + local, n), n, s);
  }
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace strata
