// Early stopping's bookkeeping (train/early_stopping.hpp): which evaluations count as improvements (direction,
// min_delta, non-finite values), when patience runs out, and the value read from a classifier's metrics.
#include "train/early_stopping.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace strata {
namespace {

TrainConfig watching(const std::string& metric, int64_t patience, double min_delta = 0) {
  TrainConfig c;
  c.early_stop_metric = metric;
  c.early_stop_patience = patience;
  c.early_stop_min_delta = min_delta;
  return c;
}

TEST(EarlyStopping, LossMustFallAccuracyMustRise) {
  EarlyStopping loss(watching("val_loss", 2));
  EXPECT_TRUE(loss.lower_is_better());
  EXPECT_TRUE(loss.observe(10, 3.0));  // the first evaluation is the best so far
  EXPECT_TRUE(loss.observe(20, 2.5));
  EXPECT_FALSE(loss.observe(30, 2.5));  // equal is no improvement
  EXPECT_FALSE(loss.should_stop());
  EXPECT_FALSE(loss.observe(40, 2.7));
  EXPECT_TRUE(loss.should_stop());
  EXPECT_EQ(loss.state().best_step, 20);
  EXPECT_EQ(loss.state().best, 2.5);
  EXPECT_EQ(loss.state().bad_evals, 2);

  EarlyStopping accuracy(watching("val_accuracy", 1));
  EXPECT_FALSE(accuracy.lower_is_better());
  EXPECT_TRUE(accuracy.observe(1, 0.5));
  EXPECT_TRUE(accuracy.observe(2, 0.6));
  EXPECT_FALSE(accuracy.observe(3, 0.4));
  EXPECT_TRUE(accuracy.should_stop());
}

TEST(EarlyStopping, MinDeltaAndNonFiniteValuesAndAnImprovementResetsPatience) {
  EarlyStopping e(watching("val_loss", 3, 0.1));
  EXPECT_FALSE(e.observe(1, std::numeric_limits<double>::quiet_NaN()));  // never the best
  EXPECT_FALSE(e.state().has_best);
  EXPECT_TRUE(e.observe(2, 2.0));
  EXPECT_FALSE(e.observe(3, 1.95));  // better, but not by more than min_delta
  EXPECT_FALSE(e.observe(4, std::numeric_limits<double>::infinity()));
  EXPECT_EQ(e.state().bad_evals, 2);
  EXPECT_TRUE(e.observe(5, 1.8));  // resets the count
  EXPECT_EQ(e.state().bad_evals, 0);
  EXPECT_FALSE(e.should_stop());
}

TEST(EarlyStopping, PatienceZeroOnlyKeepsTheBestAndStateRestores) {
  EarlyStopping e(watching("val_macro_f1", 0));
  e.observe(1, 0.3);
  for (int i = 2; i < 50; ++i) e.observe(i, 0.1);
  EXPECT_FALSE(e.should_stop());
  EXPECT_EQ(e.state().best_step, 1);
  EarlyStopping resumed(watching("val_macro_f1", 0));
  resumed.restore(e.state());
  EXPECT_FALSE(resumed.observe(50, 0.3));
  EXPECT_TRUE(resumed.observe(51, 0.31));
}

TEST(EarlyStopping, ValueOfAClassifiersMetrics) {
  ClassificationMetrics m;
  m.classes = 4;
  m.loss = 0.7, m.accuracy = 0.8;
  m.top_k = {{1, 0.8}, {3, 0.95}};
  m.macro.f1 = 0.6, m.weighted.f1 = 0.65;
  EXPECT_EQ(early_stop_value(m, "val_loss"), 0.7);
  EXPECT_EQ(early_stop_value(m, "val_accuracy"), 0.8);
  EXPECT_EQ(early_stop_value(m, "val_top3"), 0.95);
  EXPECT_EQ(early_stop_value(m, "val_macro_f1"), 0.6);
  EXPECT_EQ(early_stop_value(m, "val_weighted_f1"), 0.65);
  EXPECT_TRUE(std::isnan(early_stop_value(m, "")));
  EXPECT_THROW(early_stop_value(m, "val_top5"), Error);  // 4 classes: not reported
}

}  // namespace
}  // namespace strata
