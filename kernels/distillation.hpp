#pragma once
// Knowledge distillation (Hinton et al.; `[distill]`, docs/training.md): the student's loss per row is
//   (1 - a) * hard + a * T^2 * KL(q_t || q_s),   q_t = softmax(teacher / T), q_s = softmax(student / T)
// where `hard` is the row's cross-entropy against its label (kernels/cross_entropy.hpp) and a the soft loss's
// weight (distill.alpha); torch: (1 - a) * cross_entropy + a * T^2 * kl_div(log_softmax(s / T), softmax(t / T)).
// Its gradient in the student's logits: (1 - a) * d(hard) + a * T * (q_s - q_t).
// One thread per row (the classifiers' few classes; a language model's vocabulary would want the team shape).
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

namespace distillation_detail {

// Max and sum of exp((z - max) / T) over a row of V values starting at z(base): log-sum-exp of z / T is
// max / T + log(sum).
template <class T, class View>
KOKKOS_INLINE_FUNCTION void row_lse(const View& z, int64_t base, int64_t V, T temperature, T& mx, T& sum) {
  mx = z(base);
  for (int64_t v = 1; v < V; ++v) mx = z(base + v) > mx ? z(base + v) : mx;
  sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += fastmath::exp((z(base + v) - mx) / temperature);
}

}  // namespace distillation_detail

// losses[N] (in: each row's hard loss; out: the distillation loss) from student logits[N, V] and teacher[N, V].
template <class T>
void distillation_forward(const Vec<T>& losses, const Vec<T>& logits, const Vec<T>& teacher, int rows, int vocab,
                          T temperature, T alpha) {
  const int64_t V = vocab;
  Kokkos::parallel_for(
      "strata::distillation::forward", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * V;
        T smx, ssum, tmx, tsum;
        distillation_detail::row_lse(logits, base, V, temperature, smx, ssum);
        distillation_detail::row_lse(teacher, base, V, temperature, tmx, tsum);
        // log q_t - log q_s = (t - tmx) / T - log tsum - (s - smx) / T + log ssum
        const T shift = kmath::log(ssum) - kmath::log(tsum);
        T kl = 0;
        for (int64_t v = 0; v < V; ++v) {
          const T qt = fastmath::exp((teacher(base + v) - tmx) / temperature) / tsum;
          kl += qt * ((teacher(base + v) - tmx - logits(base + v) + smx) / temperature + shift);
        }
        losses(n) = (T(1) - alpha) * losses(n) + alpha * temperature * temperature * kl;
      });
}

// grad[N, V] = scale * a * T * (q_s - q_t): the soft loss's gradient in the student's logits, for loss = scale *
// (sum of the rows' losses). Call before the hard cross-entropy's backward overwrites the logits; that one then adds
// (1 - a) of its gradient (kernels/cross_entropy.hpp with dloss * (1 - a)).
template <class T>
void distillation_soft_gradient(const Vec<T>& grad, const Vec<T>& logits, const Vec<T>& teacher, int rows, int vocab,
                                T temperature, T alpha, T scale) {
  const int64_t V = vocab;
  Kokkos::parallel_for(
      "strata::distillation::soft_gradient", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        const int64_t base = n * V;
        T smx, ssum, tmx, tsum;
        distillation_detail::row_lse(logits, base, V, temperature, smx, ssum);
        distillation_detail::row_lse(teacher, base, V, temperature, tmx, tsum);
        const T k = scale * alpha * temperature;
        for (int64_t v = 0; v < V; ++v)
          grad(base + v) = k * (fastmath::exp((logits(base + v) - smx) / temperature) / ssum -
                                fastmath::exp((teacher(base + v) - tmx) / temperature) / tsum);
      });
}

}  // namespace strata
