#include "optim/adamw.hpp"

#include "kernels/adamw.hpp"

namespace strata {

template <class T>
void AdamW<T>::step(ParamBuffer<T>& params, double lr) {
  ++step_;
  const auto& specs = params.specs();
  for (size_t i = 0; i < specs.size(); ++i) {
    const AdamWStep s{lr, config_.beta1, config_.beta2, config_.eps, specs[i].decay ? config_.weight_decay : 0.0,
                      step_};
    adamw_update<T>(params.param(int(i)), params.grad(int(i)), params.adam_m(int(i)), params.adam_v(int(i)),
                    size_t(specs[i].numel()), s);
  }
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace strata
