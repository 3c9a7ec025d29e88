#pragma once
// ReLU (torch.nn.ReLU).
#include "kernels/common.hpp"

namespace strata {

// y[n] = max(x, 0); a NaN passes through, as in PyTorch. y may alias x (in place).
template <class T>
void relu_forward(const Vec<T>& y, const Vec<T>& x, size_t n) {
  Kokkos::parallel_for(
      "strata::activation::relu_forward", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const T v = x(i);
        y(i) = v < T(0) ? T(0) : v;
      });
}

// dx[n] = dy where x > 0, else 0 (the gradient at exactly 0 is 0, as in PyTorch). Overwrites dx; dx may alias dy.
template <class T>
void relu_backward(const Vec<T>& dx, const Vec<T>& dy, const Vec<T>& x, size_t n) {
  Kokkos::parallel_for(
      "strata::activation::relu_backward", range(n),
      KOKKOS_LAMBDA(const int64_t i) { dx(i) = x(i) > T(0) ? dy(i) : T(0); });
}

}  // namespace strata
