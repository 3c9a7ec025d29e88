#include "parallel/tied_gradients.hpp"

#include <algorithm>

namespace strata {

template <class T>
TiedGradients<T>::TiedGradients(Communicator* group, ParamBuffer<T>& params) : group_(nullptr), params_(params) {
  for (const auto& s : params.specs())
    if (s.tied) tied_end_ = std::max(tied_end_, s.offset + s.numel());
  if (tied_end_ > 0) group_ = group;
}

template <class T>
GradReadyHook TiedGradients<T>::hold_back(GradReadyHook next) const {
  if (!group_) return next;
  const int64_t floor = tied_end_;
  return [next, floor](int64_t ready_from) {
    if (ready_from >= floor && next) next(ready_from);
  };
}

template <class T>
void TiedGradients<T>::sum() {
  if (!group_) return;
  Kokkos::fence();
  for (size_t i = 0; i < params_.specs().size(); ++i) {
    const auto& s = params_.specs()[i];
    if (s.tied) group_->all_reduce_sum(params_.grad(int(i)).data(), size_t(s.numel()));
  }
}

template class TiedGradients<float>;
template class TiedGradients<double>;

}  // namespace strata
