// Durations as the step lines and progress lines print them, when commands show progress, and the lines
// (core/progress.hpp).
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>

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

TEST(ProgressWanted, ForcedOnOffElseOnlyOnATerminal) {
  EXPECT_TRUE(progress_wanted(true, false));
  EXPECT_FALSE(progress_wanted(false, true));
  EXPECT_EQ(progress_wanted(false, false), ::isatty(STDERR_FILENO) == 1);  // ctest: not a terminal, so quiet
}

TEST(Progress, LinesWithTotalPercentRateEtaAndTheFinalOne) {
  ::testing::internal::CaptureStderr();
  Progress p("export", "tensors", 0, /*enabled=*/true, /*interval_s=*/0.0);
  p.update(2, 8);
  p.finish();
  Progress quiet("silent", "tensors", 8, /*enabled=*/false, 0.0);
  quiet.update(3);
  quiet.finish();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("export: 2 tensors of 8 (25%)"), std::string::npos) << err;
  EXPECT_NE(err.find(", ETA "), std::string::npos) << err;
  EXPECT_NE(err.find("done in"), std::string::npos) << err;
  EXPECT_EQ(err.find("silent"), std::string::npos) << err;  // the disabled one printed nothing
}

}  // namespace
}  // namespace strata
