#pragma once
#include <gtest/gtest.h>
#include <type_traits>
// Helpers shared by the kernel tests: seeded random data, host <-> View copies, error measures and
// central finite differences. References in the tests are plain double loops over std::vector.
#include <Kokkos_Core.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/common.hpp"

namespace strata::testing {

// n values uniform in [lo, hi) from a fixed seed (each test picks its own seed).
inline std::vector<double> random_vector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// n token ids in [0, vocab) from a fixed seed.
inline std::vector<int32_t> random_tokens(size_t n, int vocab, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// A View of T holding `values` (rounded to T), filled through a host mirror.
template <class T>
Vec<T> to_view(const std::vector<double>& values, const std::string& label = "test") {
  Vec<T> v(label, values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (size_t i = 0; i < values.size(); ++i) h(i) = T(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

inline Vec<int32_t> to_view(const std::vector<int32_t>& values, const std::string& label = "tokens") {
  Vec<int32_t> v(label, values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (size_t i = 0; i < values.size(); ++i) h(i) = values[i];
  Kokkos::deep_copy(v, h);
  return v;
}

// The values of a View, as double.
template <class T>
std::vector<double> to_host(const Vec<T>& v) {
  auto h = Kokkos::create_mirror_view(v);
  Kokkos::deep_copy(h, v);
  std::vector<double> out(v.extent(0));
  for (size_t i = 0; i < out.size(); ++i) out[i] = double(h(i));
  return out;
}

// The values rounded to float and back (the inputs a float kernel actually saw).
inline std::vector<double> rounded_to_float(std::vector<double> v) {
  for (auto& x : v) x = double(float(x));
  return v;
}

// ||a - ref|| / ||ref|| (absolute when ref is all zero).
inline double rel_error(const std::vector<double>& a, const std::vector<double>& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline std::vector<double> add(std::vector<double> a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  return a;
}

// Central differences dL/dx_i = (L(x + eps e_i) - L(x - eps e_i)) / 2 eps, perturbing `x` in place
// (restored afterwards); `loss` evaluates L reading the current contents of x.
inline std::vector<double> finite_difference(std::vector<double>& x, const std::function<double()>& loss,
                                             double eps = 1e-6) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double up = loss();
    x[i] = saved - eps;
    const double down = loss();
    x[i] = saved;
    grad[i] = (up - down) / (2 * eps);
  }
  return grad;
}

// Tolerances used throughout: float kernels vs a double reference, double kernels vs the reference,
// analytic gradients vs central differences.
constexpr double kFloatTol = 1e-5;
constexpr double kDoubleTol = 1e-12;
constexpr double kGradTol = 1e-6;

// Runs f(RowShapeTag<S>{}) for both row shapes (kernels/common.hpp), naming the shape in failures.
template <RowShape S>
using RowShapeTag = std::integral_constant<RowShape, S>;
template <class F>
void for_each_row_shape(F f) {
  {
    SCOPED_TRACE("RowShape::Thread");
    f(RowShapeTag<RowShape::Thread>{});
  }
  {
    SCOPED_TRACE("RowShape::Team");
    f(RowShapeTag<RowShape::Team>{});
  }
}

}  // namespace strata::testing
