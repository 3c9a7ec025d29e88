#pragma once
// L1 and L2 penalties as loss terms (train.l1, train.l2): loss += l1 sum|w| + (l2 / 2) sum w^2 over the regularized
// tensors, whose gradient l1 sign(w) + l2 w is added to the data gradient before clipping. Unlike AdamW's decoupled
// weight decay, the penalty's gradient goes through the optimizer's normalisation like any other.
#include "kernels/common.hpp"

namespace strata {

// l1 sum|w[n]| + (l2 / 2) sum w[n]^2, accumulated in double.
template <class T>
double penalty(const Vec<T>& w, size_t n, double l1, double l2) {
  double total = 0;
  Kokkos::parallel_reduce(
      "strata::regularization::penalty", range(n),
      KOKKOS_LAMBDA(const int64_t i, double& acc) {
        const double x = double(w(i));
        acc += l1 * (x < 0 ? -x : x) + 0.5 * l2 * x * x;
      },
      total);
  return total;
}

// g[n] += l1 sign(w[n]) + l2 w[n]   (sign(0) = 0: the subgradient that leaves zeros alone)
template <class T>
void add_penalty_gradient(const Vec<T>& g, const Vec<T>& w, size_t n, T l1, T l2) {
  Kokkos::parallel_for(
      "strata::regularization::gradient", range(n), KOKKOS_LAMBDA(const int64_t i) {
        const T x = w(i);
        g(i) += l1 * T((x > 0) - (x < 0)) + l2 * x;
      });
}

}  // namespace strata
