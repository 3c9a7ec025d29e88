// The distillation loss and its soft gradient (kernels/distillation.hpp) against the definition in double and finite
// differences, in both precisions; alpha 0 leaves the hard loss, and the teacher's own logits give no soft loss.
#include "kernels/distillation.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 5, kClasses = 7;

std::vector<double> softmax_at(const std::vector<double>& z, int row, double T) {
  double top = -INFINITY, sum = 0;
  for (int c = 0; c < kClasses; ++c) top = std::max(top, z[size_t(row * kClasses + c)] / T);
  std::vector<double> p(kClasses);
  for (int c = 0; c < kClasses; ++c) sum += p[size_t(c)] = std::exp(z[size_t(row * kClasses + c)] / T - top);
  for (double& v : p) v /= sum;
  return p;
}

// (1 - a) hard + a T^2 KL(q_t || q_s) per row.
std::vector<double> reference_losses(const std::vector<double>& hard, const std::vector<double>& s,
                                     const std::vector<double>& t, double T, double a) {
  std::vector<double> out(kRows);
  for (int r = 0; r < kRows; ++r) {
    const auto qs = softmax_at(s, r, T), qt = softmax_at(t, r, T);
    double kl = 0;
    for (int c = 0; c < kClasses; ++c) kl += qt[size_t(c)] * std::log(qt[size_t(c)] / qs[size_t(c)]);
    out[size_t(r)] = (1 - a) * hard[size_t(r)] + a * T * T * kl;
  }
  return out;
}

template <class P>
std::vector<double> run_forward(const std::vector<double>& hard, const std::vector<double>& s,
                                const std::vector<double>& t, double T, double a) {
  Vec<P> losses = to_view<P>(hard);
  distillation_forward<P>(losses, to_view<P>(s), to_view<P>(t), kRows, kClasses, P(T), P(a));
  return to_host(losses);
}

TEST(Distillation, LossMatchesTheDefinition) {
  const auto s = rounded_to_float(random_vector(kRows * kClasses, 701, -4, 4));
  const auto t = rounded_to_float(random_vector(kRows * kClasses, 702, -4, 4));
  const auto hard = rounded_to_float(random_vector(kRows, 703, 0.5, 2));
  for (double T : {1.0, 2.0, 4.5})
    for (double a : {0.0, 0.3, 1.0}) {
      SCOPED_TRACE("T " + std::to_string(T) + " alpha " + std::to_string(a));
      const auto ref = reference_losses(hard, s, t, T, a);
      EXPECT_LT(rel_error(run_forward<double>(hard, s, t, T, a), ref), kDoubleTol);
      EXPECT_LT(rel_error(run_forward<float>(hard, s, t, T, a), ref), 1e-5);
    }
  // The teacher's own logits: no soft loss, only (1 - a) hard.
  const auto same = run_forward<double>(hard, t, t, 2.0, 0.4);
  for (int r = 0; r < kRows; ++r) EXPECT_NEAR(same[size_t(r)], 0.6 * hard[size_t(r)], 1e-12);
}

TEST(Distillation, SoftGradientMatchesFiniteDifferences) {
  auto s = random_vector(kRows * kClasses, 711, -3, 3);
  const auto t = random_vector(kRows * kClasses, 712, -3, 3);
  const std::vector<double> zero(kRows, 0.0);
  const double T = 2.5, a = 0.7, scale = 0.3;
  auto loss = [&] {
    double sum = 0;
    for (double v : reference_losses(zero, s, t, T, a)) sum += v;
    return scale * sum;
  };
  const auto fd = finite_difference(s, loss);
  Vec<double> grad("grad", s.size());
  distillation_soft_gradient<double>(grad, to_view<double>(s), to_view<double>(t), kRows, kClasses, T, a, scale);
  EXPECT_LT(rel_error(to_host(grad), fd), kGradTol);
  Vec<float> gradf("gradf", s.size());
  distillation_soft_gradient<float>(gradf, to_view<float>(rounded_to_float(s)), to_view<float>(rounded_to_float(t)),
                                    kRows, kClasses, float(T), float(a), float(scale));
  EXPECT_LT(rel_error(to_host(gradf), fd), 1e-5);
}

}  // namespace
}  // namespace strata
