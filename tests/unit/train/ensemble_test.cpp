// Ensemble combination (train/ensemble.hpp) against the definitions evaluated here: the averaged softmax
// probabilities, majority votes with ties broken by them, and the mixture's cross-entropy.
#include "train/ensemble.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.hpp"

namespace strata {
namespace {

std::vector<double> softmax(const float* z, int n) {
  double top = z[0], sum = 0;
  for (int c = 1; c < n; ++c) top = std::max(top, double(z[c]));
  std::vector<double> p(static_cast<size_t>(n));
  for (int c = 0; c < n; ++c) sum += p[size_t(c)] = std::exp(double(z[c]) - top);
  for (double& v : p) v /= sum;
  return p;
}

TEST(Ensemble, MeanIsTheLogOfTheAveragedProbabilities) {
  const int rows = 7, classes = 5, members = 3;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0, 2);
  std::vector<std::vector<float>> logits(members, std::vector<float>(rows * classes));
  for (auto& m : logits)
    for (float& v : m) v = normal(gen);
  const auto out = combine_logits(logits, rows, classes, EnsembleCombine::Mean);
  for (int r = 0; r < rows; ++r) {
    std::vector<double> mean(classes, 0.0);
    for (const auto& m : logits) {
      const auto p = softmax(m.data() + r * classes, classes);
      for (int c = 0; c < classes; ++c) mean[size_t(c)] += p[size_t(c)] / members;
    }
    const auto got = softmax(out.data() + r * classes, classes);  // softmax(log p) = p
    for (int c = 0; c < classes; ++c) EXPECT_NEAR(got[size_t(c)], mean[size_t(c)], 1e-6) << r << " " << c;
  }
}

TEST(Ensemble, VoteTakesTheMajorityAndBreaksTiesByTheAverage) {
  // Three members, 3 classes. Row 0: votes 1, 1, 2 -> class 1 though class 2's averaged probability is higher.
  // Row 1: votes 0, 1 (two members) tie -> the larger averaged probability (class 0: 0.9 against 0.55).
  const std::vector<std::vector<float>> three = {
      {0, 1, 0, /**/ 0, 0, 0}, {0, 1, 0, /**/ 0, 0, 0}, {0, 0, 9, /**/ 0, 0, 0}};
  auto out = combine_logits(three, 2, 3, EnsembleCombine::Vote);
  EXPECT_GT(out[1], out[2]);
  EXPECT_GT(out[1], out[0]);
  const std::vector<std::vector<float>> two = {{std::log(0.9f), std::log(0.05f), std::log(0.05f)},
                                               {std::log(0.1f), std::log(0.8f), std::log(0.1f)}};
  out = combine_logits(two, 1, 3, EnsembleCombine::Vote);
  EXPECT_GT(out[0], out[1]);
  EXPECT_GT(out[1], out[2]);
  EXPECT_THROW(combine_logits({}, 1, 3, EnsembleCombine::Mean), Error);
  EXPECT_THROW(combine_logits({{1, 2}}, 1, 3, EnsembleCombine::Mean), Error);
  EXPECT_THROW(ensemble_combine_named("median"), Error);
}

TEST(Ensemble, MixtureLoss) {
  const std::vector<double> a{std::log(0.5), std::log(0.25)}, b{std::log(0.1), std::log(0.75)};
  // One member: its mean cross-entropy; two: -mean log((pa + pb) / 2).
  EXPECT_NEAR(mixture_loss({a}), -(std::log(0.5) + std::log(0.25)) / 2, 1e-12);
  EXPECT_NEAR(mixture_loss({a, b}), -(std::log(0.3) + std::log(0.5)) / 2, 1e-12);
  // Very unlikely targets do not underflow to log(0).
  EXPECT_NEAR(mixture_loss({{-2000.0}, {-2000.0}}), 2000.0, 1e-9);
  EXPECT_THROW(mixture_loss({a, {0.0}}), Error);
}

}  // namespace
}  // namespace strata
