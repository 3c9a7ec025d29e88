#pragma once
// Knowledge distillation (Hinton et al.; `[distill]`, docs/training.md): the student's loss per row is
//   (1 - a) * hard + a * T^2 * KL(q_t || q_s),   q_t = softmax(teacher / T), q_s = softmax(student / T)
// where `hard` is the row's cross-entropy against its label (kernels/cross_entropy.hpp) and a the soft loss's
// weight (distill.alpha); torch: (1 - a) * cross_entropy + a * T^2 * kl_div(log_softmax(s / T), softmax(t / T)).
// Its gradient in the student's logits: (1 - a) * d(hard) + a * T * (q_s - q_t).
// One thread per row (the classifiers' few classes; a language model's vocabulary would want the team shape). The
// vocabulary-parallel form (below) splits the same sums over the tensor-parallel ranks.
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

// ---- Vocabulary-parallel logits (parallel/tensor_parallel.hpp): each rank holds columns [r V/tp, (r+1) V/tp) of the
// student's logits and the same columns of the teacher's. The rows' statistics combine over the group: stats [4N] =
// [student max | teacher max | student sum | teacher sum] (the maxima all-reduced by max, then the sums of
// exp((z - max) / T) by sum), and the KL divergence is the sum of the ranks' partial sums over their columns.

// stats[0, 2N) = this rank's row maxima of logits and teacher [N, V].
template <class T>
void distillation_vp_row_max(const Vec<T>& stats, const Vec<T>& logits, const Vec<T>& teacher, int rows, int vocab) {
  const int64_t V = vocab, N = rows;
  Kokkos::parallel_for(
      "strata::distillation::vp_row_max", range(size_t(rows)), KOKKOS_LAMBDA(const int64_t n) {
        T s = logits(n * V), t = teacher(n * V);
        for (int64_t v = 1; v < V; ++v) {
          s = logits(n * V + v) > s ? logits(n * V + v) : s;
          t = teacher(n * V + v) > t ? teacher(n * V + v) : t;
        }
        stats(n) = s;
        stats(N + n) = t;
      });
}

// stats[2N, 4N) = this rank's sums of exp((z - max) / T) over its columns, given the group's maxima.
template <class T>
void distillation_vp_row_sums(const Vec<T>& stats, const Vec<T>& logits, const Vec<T>& teacher, int rows, int vocab,
                              T temperature) {
  const int64_t V = vocab, N = rows;
  Kokkos::parallel_for(
      "strata::distillation::vp_row_sums", range(size_t(rows)), KOKKOS_LAMBDA(const int64_t n) {
        T s = 0, t = 0;
        for (int64_t v = 0; v < V; ++v) {
          s += fastmath::exp((logits(n * V + v) - stats(n)) / temperature);
          t += fastmath::exp((teacher(n * V + v) - stats(N + n)) / temperature);
        }
        stats(2 * N + n) = s;
        stats(3 * N + n) = t;
      });
}

// kl[N] = this rank's part of KL(q_t || q_s): the sum over its columns of q_t (log q_t - log q_s).
template <class T>
void distillation_vp_kl(const Vec<T>& kl, const Vec<T>& stats, const Vec<T>& logits, const Vec<T>& teacher, int rows,
                        int vocab, T temperature) {
  const int64_t V = vocab, N = rows;
  Kokkos::parallel_for(
      "strata::distillation::vp_kl", range(size_t(rows)), KOKKOS_LAMBDA(const int64_t n) {
        const T smx = stats(n), tmx = stats(N + n), ssum = stats(2 * N + n), tsum = stats(3 * N + n);
        const T shift = kmath::log(ssum) - kmath::log(tsum);
        T acc = 0;
        for (int64_t v = 0; v < V; ++v) {
          const T qt = fastmath::exp((teacher(n * V + v) - tmx) / temperature) / tsum;
          acc += qt * ((teacher(n * V + v) - tmx - logits(n * V + v) + smx) / temperature + shift);
        }
        kl(n) = acc;
      });
}

// losses[N] = (1 - a) losses + a T^2 kl   (kl: the whole divergence, summed over the group)
template <class T>
void distillation_vp_finish(const Vec<T>& losses, const Vec<T>& kl, int rows, T temperature, T alpha) {
  Kokkos::parallel_for(
      "strata::distillation::vp_finish", range(size_t(rows)), KOKKOS_LAMBDA(const int64_t n) {
        losses(n) = (T(1) - alpha) * losses(n) + alpha * temperature * temperature * kl(n);
      });
}

// grad[N, V] = scale a T (q_s - q_t) on this rank's columns, from the group's statistics.
template <class T>
void distillation_vp_soft_gradient(const Vec<T>& grad, const Vec<T>& stats, const Vec<T>& logits, const Vec<T>& teacher,
                                   int rows, int vocab, T temperature, T alpha, T scale) {
  const int64_t V = vocab, N = rows;
  const T k = scale * alpha * temperature;
  Kokkos::parallel_for(
      "strata::distillation::vp_soft_gradient", range(size_t(rows) * size_t(vocab)), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t n = i / V;
        grad(i) = k * (fastmath::exp((logits(i) - stats(n)) / temperature) / stats(2 * N + n) -
                       fastmath::exp((teacher(i) - stats(N + n)) / temperature) / stats(3 * N + n));
      });
}

}  // namespace strata
