#pragma once
// AdamW with decoupled weight decay, step for step as torch.optim.AdamW (amsgrad off).
#include "kernels/common.hpp"

namespace strata {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay;
  long step;  // 1-based, after increment
};

// p, g, m, v: [n] slices of the contiguous buffers.
template <class T>
void adamw_update(const Vec<T>& p, const Vec<T>& g, const Vec<T>& m, const Vec<T>& v, size_t n, const AdamWStep& s) {
  const T b1 = T(s.beta1), b2 = T(s.beta2), eps = T(s.eps);
  const T decay = T(1.0 - s.lr * s.weight_decay);
  const T step_size = T(s.lr / (1.0 - std::pow(s.beta1, double(s.step))));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(s.beta2, double(s.step))));
  Kokkos::parallel_for(
      "strata::adamw::update", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const T gi = g(i);
        const T mi = b1 * m(i) + (T(1) - b1) * gi;
        const T vi = b2 * v(i) + (T(1) - b2) * gi * gi;
        m(i) = mi;
        v(i) = vi;
        const T denom = kmath::sqrt(vi) / bc2_sqrt + eps;
        p(i) = p(i) * decay - step_size * mi / denom;
      });
}

}  // namespace strata
