// AdamW: several steps against a hand-written transcription of torch.optim.AdamW (amsgrad off):
//   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#include "kernels/adamw.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr size_t kN = 13;
constexpr int kSteps = 5;

struct State {
  std::vector<double> p, m, v;
};

void reference_step(State& s, const std::vector<double>& g, double lr, double b1, double b2, double eps, double wd,
                    long t) {
  for (size_t i = 0; i < s.p.size(); ++i) {
    s.p[i] *= 1.0 - lr * wd;
    s.m[i] = b1 * s.m[i] + (1.0 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1.0 - b2) * g[i] * g[i];
    const double m_hat = s.m[i] / (1.0 - std::pow(b1, t));
    const double v_hat = s.v[i] / (1.0 - std::pow(b2, t));
    s.p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

// Runs kSteps of the kernel and of the reference on the same gradients; returns both final states.
template <class T>
std::pair<State, State> run_steps(double lr, double b1, double b2, double eps, double wd, double grad_scale) {
  State ref{rounded_to_float(random_vector(kN, 701)), std::vector<double>(kN, 0.0), std::vector<double>(kN, 0.0)};
  Vec<T> p = to_view<T>(ref.p), m("m", kN), v("v", kN);
  for (long t = 1; t <= kSteps; ++t) {
    auto g = random_vector(kN, 710 + t, -grad_scale, grad_scale);
    if (t == 2) g[3] = 0.0;  // a zero gradient mid-way (m, v decay; p still moves)
    g = rounded_to_float(g);
    reference_step(ref, g, lr, b1, b2, eps, wd, t);
    adamw_update<T>(p, to_view<T>(g), m, v, kN, AdamWStep{lr, b1, b2, eps, wd, t});
  }
  return {State{to_host(p), to_host(m), to_host(v)}, ref};
}

template <class T>
void expect_matches_torch_formulas(double tol, double eps, double grad_scale) {
  const auto [got, ref] = run_steps<T>(1e-2, 0.9, 0.95, eps, 0.1, grad_scale);
  EXPECT_LT(rel_error(got.p, ref.p), tol);
  EXPECT_LT(rel_error(got.m, ref.m), tol);
  EXPECT_LT(rel_error(got.v, ref.v), tol);
}

TEST(AdamW, SeveralStepsMatchTorchFloat) { expect_matches_torch_formulas<float>(kFloatTol, 1e-8, 1.0); }
TEST(AdamW, SeveralStepsMatchTorchDouble) { expect_matches_torch_formulas<double>(kDoubleTol, 1e-8, 1.0); }

// Gradients of the size of eps: where eps is added (after sqrt(v_hat), not inside it, not before the
// bias correction) changes the update by O(1), so this pins it down.
TEST(AdamW, EpsAddedAfterSqrtOfBiasCorrectedV) {
  expect_matches_torch_formulas<double>(kDoubleTol, 1e-3, 1e-3);
  expect_matches_torch_formulas<float>(kFloatTol, 1e-3, 1e-3);
}

TEST(AdamW, DecoupledWeightDecayOnly) {
  // Zero gradient: m = v = 0, the Adam term is 0 / eps = 0, so p is multiplied by 1 - lr*wd exactly.
  const auto p0 = random_vector(kN, 720);
  Vec<double> p = to_view<double>(p0), g("g", kN), m("m", kN), v("v", kN);
  adamw_update<double>(p, g, m, v, kN, AdamWStep{0.05, 0.9, 0.999, 1e-8, 0.2, 1});
  const auto got = to_host(p);
  for (size_t i = 0; i < kN; ++i) EXPECT_DOUBLE_EQ(got[i], p0[i] * (1.0 - 0.05 * 0.2)) << i;
}

TEST(AdamW, FirstStepMovesEachParameterByLr) {
  // Step 1 with wd = 0: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) ~ lr * sign(g).
  const auto p0 = random_vector(kN, 730);
  const auto g0 = random_vector(kN, 731, 0.5, 2.0);
  Vec<double> p = to_view<double>(p0), g = to_view<double>(g0), m("m", kN), v("v", kN);
  adamw_update<double>(p, g, m, v, kN, AdamWStep{1e-3, 0.9, 0.999, 1e-8, 0.0, 1});
  const auto got = to_host(p);
  for (size_t i = 0; i < kN; ++i) EXPECT_NEAR(got[i], p0[i] - 1e-3 * g0[i] / (g0[i] + 1e-8), 1e-15) << i;
}

}  // namespace
}  // namespace strata
