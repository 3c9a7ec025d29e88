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

// (l2 / 2) sum (w[n] - a[n])^2: the pull toward anchor weights a (continual training, train.l2_init).
template <class T>
double anchor_penalty(const Vec<T>& w, const Vec<T>& a, size_t n, double l2) {
  double total = 0;
  Kokkos::parallel_reduce(
      "strata::regularization::anchor_penalty", range(n),
      KOKKOS_LAMBDA(const int64_t i, double& acc) {
        const double d = double(w(i)) - double(a(i));
        acc += 0.5 * l2 * d * d;
      },
      total);
  return total;
}

// g[n] += l2 (w[n] - a[n])
template <class T>
void add_anchor_gradient(const Vec<T>& g, const Vec<T>& w, const Vec<T>& a, size_t n, T l2) {
  Kokkos::parallel_for(
      "strata::regularization::anchor_gradient", range(n),
      KOKKOS_LAMBDA(const int64_t i) { g(i) += l2 * (w(i) - a(i)); });
}

}  // namespace strata
