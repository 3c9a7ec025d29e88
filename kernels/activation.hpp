#pragma once
// ReLU (torch.nn.ReLU).
#include <string>

#include "kernels/common.hpp"
#include "kernels/gelu.hpp"

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

// The activation of a classifier's blocks and hidden layer, by its config name ("relu" or "gelu").
enum class Activation { Relu, Gelu };
inline Activation activation_named(const std::string& name) {
  return name == "gelu" ? Activation::Gelu : Activation::Relu;
}

// y[n] = act(x[n])
template <class T>
void activation_forward(Activation a, const Vec<T>& y, const Vec<T>& x, size_t n) {
  if (a == Activation::Gelu)
    gelu_forward<T>(y, x, n);
  else
    relu_forward<T>(y, x, n);
}

// In place: dxy[n] = dxy[n] * act'(x[n]) (x: the activation's input).
template <class T>
void activation_backward(Activation a, const Vec<T>& dxy, const Vec<T>& x, size_t n) {
  if (a == Activation::Gelu)
    gelu_backward<T>(dxy, dxy, x, n);
  else
    relu_backward<T>(dxy, dxy, x, n);
}

}  // namespace strata
