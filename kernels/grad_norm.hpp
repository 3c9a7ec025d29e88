#pragma once
// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ semantics).
#include "kernels/common.hpp"

namespace strata {

// Sum of squares of g[n], accumulated in double.
template <class T>
double sum_of_squares(const Vec<T>& g, size_t n) {
  double total = 0;
  Kokkos::parallel_reduce(
      "strata::grad_norm::sum_of_squares", range(n),
      KOKKOS_LAMBDA(const int64_t i, double& acc) { acc += double(g(i)) * double(g(i)); }, total);
  return total;
}

// g[n] *= factor
template <class T>
void scale_in_place(const Vec<T>& g, size_t n, T factor) {
  Kokkos::parallel_for(
      "strata::grad_norm::scale", range(n), KOKKOS_LAMBDA(const int64_t i) { g(i) *= factor; });
}

// Clips g so that its norm is at most max_norm (max_norm <= 0 disables); returns the norm before clipping.
template <class T>
double clip_grad_norm(const Vec<T>& g, size_t n, double max_norm) {
  const double norm = std::sqrt(sum_of_squares(g, n));
  const double coef = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coef < 1.0) scale_in_place(g, n, T(coef));
  return norm;
}

}  // namespace strata
