#pragma once
// GELU, tanh approximation (torch.nn.functional.gelu(approximate="tanh")).
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

// y[n] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
template <class T>
void gelu_forward(const Vec<T>& y, const Vec<T>& x, size_t n) {
  Kokkos::parallel_for(
      "strata::gelu::forward", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const T v = x(i);
        const T k = T(0.7978845608028654);  // sqrt(2/pi)
        y(i) = T(0.5) * v * (T(1) + fastmath::tanh(k * (v + T(0.044715) * v * v * v)));
      });
}

// dx[n] = dy * gelu'(x)  (overwrites dx)
template <class T>
void gelu_backward(const Vec<T>& dx, const Vec<T>& dy, const Vec<T>& x, size_t n) {
  Kokkos::parallel_for(
      "strata::gelu::backward", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const T v = x(i);
        const T k = T(0.7978845608028654);
        const T th = fastmath::tanh(k * (v + T(0.044715) * v * v * v));
        const T dinner = k * (T(1) + T(3) * T(0.044715) * v * v);
        dx(i) = dy(i) * (T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * dinner);
      });
}

}  // namespace strata
