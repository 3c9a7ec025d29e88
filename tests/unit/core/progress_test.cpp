// Durations as the step lines and progress lines print them (core/progress.hpp).
#include <gtest/gtest.h>

#include "core/progress.hpp"

namespace strata {
namespace {

TEST(FormatDuration, SecondsMinutesHours) {
  EXPECT_EQ(format_duration(0), "0.0s");
  EXPECT_EQ(format_duration(42.04), "42.0s");
  EXPECT_EQ(format_duration(59.9), "59.9s");
  EXPECT_EQ(format_duration(60), "1m00s");
  EXPECT_EQ(format_duration(187.4), "3m07s");
  EXPECT_EQ(format_duration(3599.4), "59m59s");
  EXPECT_EQ(format_duration(7500), "2h05m");
  EXPECT_EQ(format_duration(-1), "?");
}

}  // namespace
}  // namespace strata
