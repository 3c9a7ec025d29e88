// GroupNorm (kernels/group_norm.hpp): forward (y, saved mean and rstd) against a double reference written as
// plain loops, float and double, for G = 1 (LayerNorm over C, H, W), G = 2, G = 3 and G = C (InstanceNorm);
// backward dx (overwritten), dgamma and dbeta (accumulated) against finite differences; float against double;
// bit-identical reruns; C % G != 0 refused.
#include "kernels/group_norm.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kBatch = 3, kChannels = 6;
constexpr int64_t kSpatial = 5 * 3;  // H = 5, W = 3
constexpr size_t kSize = size_t(kBatch) * kChannels * kSpatial;

struct GroupNormData {
  // A nonzero mean and different spreads per channel, so that mean and rstd both matter.
  std::vector<double> x = rounded_to_float(random_vector(kSize, 701, -1.5, 2.5));
  std::vector<double> gamma = rounded_to_float(random_vector(kChannels, 702, 0.5, 1.5));
  std::vector<double> beta = rounded_to_float(random_vector(kChannels, 703));
  GroupNormData() {
    for (size_t i = 0; i < kSize; ++i) x[i] *= 1 + (i / kSpatial) % kChannels;  // channel c scaled by c + 1
  }
};

struct Reference {
  std::vector<double> y, mean, rstd;
};

Reference reference_forward(const std::vector<double>& x, const std::vector<double>& gamma,
                            const std::vector<double>& beta, int G) {
  const int CG = kChannels / G;
  Reference r{std::vector<double>(kSize), std::vector<double>(kBatch * G), std::vector<double>(kBatch * G)};
  for (int b = 0; b < kBatch; ++b)
    for (int g = 0; g < G; ++g) {
      double m = 0, var = 0;
      for (int c = g * CG; c < (g + 1) * CG; ++c)
        for (int s = 0; s < kSpatial; ++s) m += x[(b * kChannels + c) * kSpatial + s];
      m /= CG * kSpatial;
      for (int c = g * CG; c < (g + 1) * CG; ++c)
        for (int s = 0; s < kSpatial; ++s) {
          const double d = x[(b * kChannels + c) * kSpatial + s] - m;
          var += d * d;
        }
      var /= CG * kSpatial;  // biased, as torch.nn.GroupNorm
      const double rstd = 1.0 / std::sqrt(var + 1e-5);
      for (int c = g * CG; c < (g + 1) * CG; ++c)
        for (int s = 0; s < kSpatial; ++s) {
          const size_t i = (b * kChannels + c) * kSpatial + s;
          r.y[i] = (x[i] - m) * rstd * gamma[c] + beta[c];
        }
      r.mean[b * G + g] = m;
      r.rstd[b * G + g] = rstd;
    }
  return r;
}

template <class T, RowShape S = kRowShape>
Reference run_forward(const std::vector<double>& x, const std::vector<double>& gamma, const std::vector<double>& beta,
                      int G) {
  Vec<T> y = to_view<T>(random_vector(kSize, 704, 5, 6)), mean("mean", kBatch * G), rstd("rstd", kBatch * G);
  group_norm_forward<T, S>(y, mean, rstd, to_view<T>(x), to_view<T>(gamma), to_view<T>(beta), kBatch, kChannels,
                           kSpatial, G);
  return {to_host(y), to_host(mean), to_host(rstd)};
}

const int kGroupCounts[] = {1, 2, 3, kChannels};

TEST(GroupNorm, ForwardMatchesReference) {
  GroupNormData d;
  for (int G : kGroupCounts) {
    SCOPED_TRACE("G = " + std::to_string(G));
    const Reference ref = reference_forward(d.x, d.gamma, d.beta, G);
    for_each_row_shape([&](auto shape) {
      constexpr RowShape S = decltype(shape)::value;
      const Reference f = run_forward<float, S>(d.x, d.gamma, d.beta, G);
      const Reference r = run_forward<double, S>(d.x, d.gamma, d.beta, G);
      EXPECT_LT(rel_error(f.y, ref.y), kFloatTol);
      EXPECT_LT(rel_error(f.mean, ref.mean), kFloatTol);
      EXPECT_LT(rel_error(f.rstd, ref.rstd), kFloatTol);
      EXPECT_LT(rel_error(r.y, ref.y), kDoubleTol);
      EXPECT_LT(rel_error(r.mean, ref.mean), kDoubleTol);
      EXPECT_LT(rel_error(r.rstd, ref.rstd), kDoubleTol);
    });
  }
}

TEST(GroupNorm, InstanceNormNormalisesEachChannelOfEachSample) {
  // G = C with unit gamma and zero beta: every (b, c) plane has mean 0 and variance var / (var + eps) ~ 1.
  GroupNormData d;
  const std::vector<double> ones(kChannels, 1.0), zeros(kChannels, 0.0);
  const auto y = run_forward<double>(d.x, ones, zeros, kChannels).y;
  for (int plane = 0; plane < kBatch * kChannels; ++plane) {
    double m = 0, sq = 0;
    for (int s = 0; s < kSpatial; ++s) m += y[plane * kSpatial + s];
    for (int s = 0; s < kSpatial; ++s) sq += y[plane * kSpatial + s] * y[plane * kSpatial + s];
    EXPECT_NEAR(m / kSpatial, 0.0, 1e-12) << "plane " << plane;
    EXPECT_GT(sq / kSpatial, 0.99) << "plane " << plane;
    EXPECT_LT(sq / kSpatial, 1.0) << "plane " << plane;
  }
}

std::vector<double> minus(std::vector<double> a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return a;
}

TEST(GroupNorm, BackwardMatchesFiniteDifferences) {
  for (int G : kGroupCounts) {
    SCOPED_TRACE("G = " + std::to_string(G));
    GroupNormData d;
    const auto R = random_vector(kSize, 705);
    auto loss = [&] { return dot(reference_forward(d.x, d.gamma, d.beta, G).y, R); };
    const auto fd_x = finite_difference(d.x, loss);
    const auto fd_gamma = finite_difference(d.gamma, loss);
    const auto fd_beta = finite_difference(d.beta, loss);

    for_each_row_shape([&](auto shape) {
      constexpr RowShape S = decltype(shape)::value;
      Vec<double> x = to_view<double>(d.x), gamma = to_view<double>(d.gamma), beta = to_view<double>(d.beta);
      Vec<double> y("y", kSize), mean("mean", kBatch * G), rstd("rstd", kBatch * G);
      group_norm_forward<double, S>(y, mean, rstd, x, gamma, beta, kBatch, kChannels, kSpatial, G);
      const auto g0_gamma = random_vector(kChannels, 706), g0_beta = random_vector(kChannels, 707);
      Vec<double> dx = to_view<double>(random_vector(kSize, 708, 5, 6));  // garbage: overwritten
      Vec<double> dgamma = to_view<double>(g0_gamma), dbeta = to_view<double>(g0_beta);
      group_norm_backward<double, S>(dx, dgamma, dbeta, to_view<double>(R), x, gamma, mean, rstd, kBatch, kChannels,
                                     kSpatial, G);
      EXPECT_LT(rel_error(to_host(dx), fd_x), kGradTol);
      EXPECT_LT(rel_error(minus(to_host(dgamma), g0_gamma), fd_gamma), kGradTol);
      EXPECT_LT(rel_error(minus(to_host(dbeta), g0_beta), fd_beta), kGradTol);
      EXPECT_LT(rel_error(to_host(dgamma), add(g0_gamma, fd_gamma)), kGradTol);
      EXPECT_LT(rel_error(to_host(dbeta), add(g0_beta, fd_beta)), kGradTol);
    });
  }
}

// Forward then backward in T with dy = R; returns y, dx, dgamma, dbeta.
template <class T, RowShape S = kRowShape>
std::vector<std::vector<double>> run_both(const GroupNormData& d, const std::vector<double>& R, int G) {
  Vec<T> x = to_view<T>(d.x), gamma = to_view<T>(d.gamma), beta = to_view<T>(d.beta);
  Vec<T> y("y", kSize), mean("mean", kBatch * G), rstd("rstd", kBatch * G);
  group_norm_forward<T, S>(y, mean, rstd, x, gamma, beta, kBatch, kChannels, kSpatial, G);
  Vec<T> dx("dx", kSize), dgamma("dgamma", kChannels), dbeta("dbeta", kChannels);
  group_norm_backward<T, S>(dx, dgamma, dbeta, to_view<T>(R), x, gamma, mean, rstd, kBatch, kChannels, kSpatial, G);
  return {to_host(y), to_host(dx), to_host(dgamma), to_host(dbeta)};
}

TEST(GroupNorm, BackwardFloatMatchesDouble) {
  GroupNormData d;
  const auto R = rounded_to_float(random_vector(kSize, 709));
  for (int G : kGroupCounts)
    for_each_row_shape([&](auto shape) {
      constexpr RowShape S = decltype(shape)::value;
      const auto f = run_both<float, S>(d, R, G), r = run_both<double, S>(d, R, G);
      for (int i = 1; i < 4; ++i) EXPECT_LT(rel_error(f[i], r[i]), kFloatTol) << "G = " << G << ", gradient " << i;
    });
}

TEST(GroupNorm, ResultsAreBitIdenticalAcrossRuns) {
  GroupNormData d;
  const auto R = random_vector(kSize, 710);
  for (int G : kGroupCounts)
    for_each_row_shape([&](auto shape) {
      constexpr RowShape S = decltype(shape)::value;
      const auto first = run_both<float, S>(d, R, G), second = run_both<float, S>(d, R, G);
      for (int i = 0; i < 4; ++i) EXPECT_EQ(first[i], second[i]) << "G = " << G << ", output " << i;
    });
}

TEST(GroupNorm, RefusesChannelsNotDivisibleByGroups) {
  GroupNormData d;
  EXPECT_THROW(run_forward<double>(d.x, d.gamma, d.beta, 4), Error);
}

}  // namespace
}  // namespace strata
