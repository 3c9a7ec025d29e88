// ClassificationCounts and classification_metrics (train/metrics.hpp) on a small hand-made confusion: 4 classes,
// 7 rows, class 2 present but never predicted, class 3 predicted but never present (scikit-learn's
// zero_division = 0: its precision and recall are 0). The expected numbers are worked out in the comments (and
// agree with sklearn.metrics.precision_recall_fscore_support(labels=[0, 1, 2, 3], zero_division=0)).
#include "train/metrics.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "comm/communicator.hpp"
#include "core/error.hpp"

namespace strata {
namespace {

constexpr int kClasses = 4;
// (target, logits). The prediction is the first largest logit; a target's rank counts the logits above it and
// the equal ones at a lower index.
const std::vector<int32_t> kTargets = {0, 0, 0, 1, 1, 2, 2};
const std::vector<float> kLogits = {
    2, 1, 0, -1,  // t0, predicted 0; target rank 0
    1, 1, 1, 1,   // t0, all tied: predicted 0 (lowest index); rank 0
    0, 2, 0, 0,   // t0, predicted 1; rank 1 (the tied 2 and 3 come after 0)
    0, 3, 3, 0,   // t1, 1 and 2 tied: predicted 1; rank 0
    2, 1, 2, 3,   // t1, predicted 3; rank 3 (0, 2 and 3 above): a top-3 miss
    1, 0, 1, 0,   // t2, 0 and 2 tied: predicted 0; rank 1 (0 ties at a lower index)
    0, 1, 0, -1,  // t2, predicted 1; rank 2 (1 above, 0 tied lower)
};
// Confusion [true][predicted]:  t0: 2 1 0 0 | t1: 0 1 0 1 | t2: 1 1 0 0 | t3: 0 0 0 0
const std::vector<int64_t> kConfusion = {2, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0};

double expected_loss() {  // mean over rows of logsumexp - target logit, in double
  double sum = 0;
  for (size_t r = 0; r < kTargets.size(); ++r) {
    double s = 0;
    for (int c = 0; c < kClasses; ++c) s += std::exp(double(kLogits[r * kClasses + size_t(c)]));
    sum += std::log(s) - double(kLogits[r * kClasses + size_t(kTargets[r])]);
  }
  return sum / double(kTargets.size());
}

ClassificationCounts counted() {
  ClassificationCounts counts(kClasses);
  counts.add(kLogits.data(), kTargets.data(), int64_t(kTargets.size()));
  return counts;
}

void expect_scores(const ClassScores& s, double p, double r, double f1, int64_t support, const std::string& what) {
  EXPECT_NEAR(s.precision, p, 1e-15) << what;
  EXPECT_NEAR(s.recall, r, 1e-15) << what;
  EXPECT_NEAR(s.f1, f1, 1e-15) << what;
  EXPECT_EQ(s.support, support) << what;
}

void expect_hand_metrics(const ClassificationMetrics& m) {
  EXPECT_EQ(m.classes, 4);
  EXPECT_EQ(m.rows, 7);
  EXPECT_EQ(m.confusion, kConfusion);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 7);  // the diagonal: 2 + 1 + 0 + 0
  ASSERT_EQ(m.top_k.size(), 2u);          // k = 1, 3 (5 > 4 classes)
  EXPECT_EQ(m.top_k[0].first, 1);
  EXPECT_DOUBLE_EQ(m.top_k[0].second, 3.0 / 7);  // top-1 is the accuracy, ties included
  EXPECT_EQ(m.top_k[1].first, 3);
  EXPECT_DOUBLE_EQ(m.top_k[1].second, 6.0 / 7);  // every row but the rank-3 one
  ASSERT_EQ(m.per_class.size(), 4u);
  // Class 0: tp 2 of 3 predicted, 3 present. Class 1: tp 1 of 3 predicted, 2 present, F1 = 2 (1/3)(1/2) / (5/6).
  expect_scores(m.per_class[0], 2.0 / 3, 2.0 / 3, 2.0 / 3, 3, "class 0");
  expect_scores(m.per_class[1], 1.0 / 3, 1.0 / 2, 2.0 / 5, 2, "class 1");
  expect_scores(m.per_class[2], 0, 0, 0, 2, "class 2 (never predicted)");
  expect_scores(m.per_class[3], 0, 0, 0, 0, "class 3 (never present)");
  expect_scores(m.macro, (2.0 / 3 + 1.0 / 3) / 4, (2.0 / 3 + 1.0 / 2) / 4, (2.0 / 3 + 2.0 / 5) / 4, 7, "macro");
  expect_scores(m.micro, 3.0 / 7, 3.0 / 7, 3.0 / 7, 7, "micro");
  // Weighted by support 3, 2, 2, 0 of 7.
  expect_scores(m.weighted, (3 * 2.0 / 3 + 2 * 1.0 / 3) / 7, (3 * 2.0 / 3 + 2 * 0.5) / 7, (3 * 2.0 / 3 + 2 * 0.4) / 7,
                7, "weighted");
  EXPECT_NEAR(m.loss, expected_loss(), 1e-14);
  EXPECT_NEAR(m.loss, 1.452632451982709, 1e-14);  // torch.nn.functional.cross_entropy in float64
}

TEST(ClassificationMetrics, HandComputedConfusionScoresAndTopK) {
  const ClassificationCounts counts = counted();
  EXPECT_EQ(counts.ks(), (std::vector<int>{1, 3}));
  EXPECT_EQ(counts.top_k_hits(), (std::vector<int64_t>{3, 6}));
  EXPECT_NEAR(counts.loss_sum(), 7 * expected_loss(), 1e-14);
  expect_hand_metrics(classification_metrics(counts));
}

TEST(ClassificationMetrics, CountsAddUpOverBatches) {
  ClassificationCounts counts(kClasses);
  counts.add(kLogits.data(), kTargets.data(), 3);
  counts.add(kLogits.data() + 3 * kClasses, kTargets.data() + 3, 4);
  counts.add(kLogits.data(), kTargets.data(), 0);
  expect_hand_metrics(classification_metrics(counts));
}

TEST(ClassificationMetrics, AllReduceOverASelfGroupKeepsTheCounts) {
  MpiCommunicator self(MPI_COMM_SELF);
  ClassificationCounts counts = counted();
  const double loss_sum = counts.loss_sum();
  counts.all_reduce(self);
  EXPECT_EQ(counts.rows(), 7);
  EXPECT_EQ(counts.loss_sum(), loss_sum);
  expect_hand_metrics(classification_metrics(counts));
  // An empty rank contributes zeros.
  ClassificationCounts empty(kClasses);
  empty.all_reduce(self);
  const auto m = classification_metrics(empty);
  EXPECT_EQ(m.rows, 0);
  EXPECT_EQ(m.accuracy, 0.0);
  EXPECT_EQ(m.loss, 0.0);
}

TEST(ClassificationMetrics, TopKListsOnlyKsUpToTheClassesAndMaxK) {
  EXPECT_EQ(ClassificationCounts(2).ks(), (std::vector<int>{1}));
  EXPECT_EQ(ClassificationCounts(3).ks(), (std::vector<int>{1, 3}));
  EXPECT_EQ(ClassificationCounts(5).ks(), (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(ClassificationCounts(10, 3).ks(), (std::vector<int>{1, 3}));
  EXPECT_EQ(ClassificationCounts(10, 1).ks(), (std::vector<int>{1}));
  // Ties at the k-th place: a target tied with lower-index logits ranks after them.
  ClassificationCounts counts(6);
  const std::vector<float> logits = {5, 5, 5, 5, 5, 5};
  for (int32_t t = 0; t < 6; ++t) counts.add(logits.data(), &t, 1);
  EXPECT_EQ(counts.top_k_hits(), (std::vector<int64_t>{1, 3, 5}));  // targets 0 / 0-2 / 0-4
  EXPECT_EQ(classification_metrics(counts).confusion[0], 1);        // all predicted 0
  EXPECT_EQ(classification_metrics(counts).confusion[5 * 6 + 0], 1);
}

TEST(ClassificationMetrics, RejectsBadTargetsAndClassCounts) {
  ClassificationCounts counts(3);
  const std::vector<float> logits = {0, 1, 2};
  const int32_t bad = 3, negative = -1;
  EXPECT_THROW(counts.add(logits.data(), &bad, 1), Error);
  EXPECT_THROW(counts.add(logits.data(), &negative, 1), Error);
  EXPECT_THROW(ClassificationCounts(1), Error);
}

TEST(ClassificationMetrics, JsonHasEveryField) {
  const auto j = to_json(classification_metrics(counted()));
  EXPECT_EQ(j.at("rows").get<int64_t>(), 7);
  EXPECT_EQ(j.at("classes").get<int>(), 4);
  EXPECT_NEAR(j.at("loss").get<double>(), expected_loss(), 1e-15);
  EXPECT_DOUBLE_EQ(j.at("accuracy").get<double>(), 3.0 / 7);
  ASSERT_EQ(j.at("top_k").size(), 2u);
  EXPECT_DOUBLE_EQ(j.at("top_k").at("1").get<double>(), 3.0 / 7);
  EXPECT_DOUBLE_EQ(j.at("top_k").at("3").get<double>(), 6.0 / 7);
  for (const char* avg : {"macro", "micro", "weighted"}) {
    for (const char* field : {"precision", "recall", "f1"}) EXPECT_TRUE(j.at(avg).at(field).is_number()) << avg;
    EXPECT_EQ(j.at(avg).at("support").get<int64_t>(), 7) << avg;
  }
  EXPECT_DOUBLE_EQ(j.at("macro").at("precision").get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j.at("weighted").at("f1").get<double>(), 0.4);
  ASSERT_EQ(j.at("per_class").size(), 4u);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(j.at("per_class")[size_t(c)].at("class").get<int>(), c);
  EXPECT_DOUBLE_EQ(j.at("per_class")[1].at("recall").get<double>(), 0.5);
  EXPECT_EQ(j.at("per_class")[2].at("support").get<int64_t>(), 2);
  EXPECT_EQ(j.at("per_class")[3].at("precision").get<double>(), 0.0);
  ASSERT_EQ(j.at("confusion").size(), 4u);
  for (int t = 0; t < 4; ++t)
    EXPECT_EQ(j.at("confusion")[size_t(t)].get<std::vector<int64_t>>(),
              std::vector<int64_t>(kConfusion.begin() + 4 * t, kConfusion.begin() + 4 * (t + 1)))
        << "row " << t;
}

TEST(ClassificationMetrics, ReportHasALinePerClassAndTheSummary) {
  const std::string report = format_report(classification_metrics(counted()));
  auto has = [&](const std::string& line) {
    EXPECT_NE(report.find(line), std::string::npos) << line << "\n" << report;
  };
  has(fmt::format("{:>12} {:>9} {:>9} {:>9} {:>9}\n", "class", "precision", "recall", "f1", "support"));
  has("           0    0.6667    0.6667    0.6667         3\n");
  has("           1    0.3333    0.5000    0.4000         2\n");
  has("           2    0.0000    0.0000    0.0000         2\n");
  has("           3    0.0000    0.0000    0.0000         0\n");
  has("   macro avg    0.2500    0.2917    0.2667         7\n");
  has("   micro avg    0.4286    0.4286    0.4286         7\n");
  has("weighted avg    0.3810    0.4286    0.4000         7\n");
  has("accuracy 0.4286 over 7 rows | top-3 0.8571 | loss 1.4526\n");
}

}  // namespace
}  // namespace strata
