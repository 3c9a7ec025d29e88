// The hang watchdog's diagnosis (train/watchdog.hpp) and the straggler check (train/straggler_report.hpp): which
// ranks have not arrived (stopped heartbeats, live ranks behind), who reports, the heartbeat's JSON, the slowest
// rank against the others' median.
#include "train/watchdog.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "train/straggler_report.hpp"

namespace strata {
namespace {

Heartbeat beat(int rank, int64_t step, Phase phase, double phase_s, int64_t counter) {
  Heartbeat h;
  h.who = {rank, "node" + std::to_string(rank), 1000 + rank, rank % 2, 0, rank / 2};
  h.step = step;
  h.phase = phase;
  h.phase_s = phase_s;
  h.counter = counter;
  return h;
}

std::vector<RankIdentity> identities(int n) {
  std::vector<RankIdentity> out;
  for (int r = 0; r < n; ++r) out.push_back(beat(r, 0, Phase::Start, 0, 0).who);
  return out;
}

TEST(Watchdog, HeartbeatJsonRoundTripsAndTornFilesAreNone) {
  const Heartbeat h = beat(3, 41, Phase::Reduce, 2.5, 17);
  const auto back = parse_heartbeat(heartbeat_json(h));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->who.describe(), "rank 3 (host node3, dp 1, tp 0, pp 1)");
  EXPECT_EQ(back->who.pid, 1003);
  EXPECT_EQ(back->step, 41);
  EXPECT_EQ(back->phase, Phase::Reduce);
  EXPECT_DOUBLE_EQ(back->phase_s, 2.5);
  EXPECT_EQ(back->counter, 17);
  EXPECT_FALSE(parse_heartbeat("").has_value());
  EXPECT_FALSE(parse_heartbeat(heartbeat_json(h).substr(0, 20)).has_value());
  EXPECT_FALSE(parse_heartbeat("{\"rank\": 1}").has_value());
  EXPECT_STREQ(phase_name(Phase::Reduce), "gradient reduction");
}

TEST(Watchdog, AStoppedRankAndALiveRankBehindHaveNotArrived) {
  // Four ranks: 0 and 2 wait in the gradient reduction of step 9; 1 stopped (its counter did not move); 3 is alive
  // but still in forward/backward of step 9.
  const std::vector<std::optional<Heartbeat>> before{
      beat(0, 9, Phase::Reduce, 10, 50), beat(1, 9, Phase::Compute, 1, 20), beat(2, 9, Phase::Reduce, 10, 60),
      beat(3, 9, Phase::Compute, 11, 70)};
  const std::vector<std::optional<Heartbeat>> after{
      beat(0, 9, Phase::Reduce, 11, 53), beat(1, 9, Phase::Compute, 1, 20), beat(2, 9, Phase::Reduce, 11, 63),
      beat(3, 9, Phase::Compute, 12, 73)};
  const auto laggards = not_arrived(identities(4), before, after);
  ASSERT_EQ(laggards.size(), 2u);
  EXPECT_EQ(laggards[0].last.who.rank, 1);
  EXPECT_NE(laggards[0].why.find("its heartbeat stopped (the last: step 9, forward/backward)"), std::string::npos)
      << laggards[0].why;
  EXPECT_EQ(laggards[1].last.who.rank, 3);
  EXPECT_NE(laggards[1].why.find("alive, at step 9 in forward/backward for 12.0 s while others reached step 9 "
                                 "(gradient reduction)"),
            std::string::npos)
      << laggards[1].why;
  // The lowest live rank stuck past the timeout reports: rank 0; with timeout 11.5 only rank 3 is past it.
  EXPECT_EQ(reporting_rank(before, after, 10.0), 0);
  EXPECT_EQ(reporting_rank(before, after, 11.5), 3);
  EXPECT_EQ(reporting_rank(before, after, 100.0), -1);
}

TEST(Watchdog, EveryRankThereMeansNoLaggardAndAMissingFileIsNamed) {
  const std::vector<std::optional<Heartbeat>> before{beat(0, 5, Phase::Checkpoint, 30, 1),
                                                     beat(1, 5, Phase::Checkpoint, 30, 1)};
  const std::vector<std::optional<Heartbeat>> after{beat(0, 5, Phase::Checkpoint, 31, 2),
                                                    beat(1, 5, Phase::Checkpoint, 31, 2)};
  EXPECT_TRUE(not_arrived(identities(2), before, after).empty());
  // A rank ahead (a later step) makes the others behind it the laggards, not itself.
  const std::vector<std::optional<Heartbeat>> ahead_after{beat(0, 5, Phase::Checkpoint, 31, 2),
                                                          beat(1, 6, Phase::Data, 31, 2)};
  const auto behind = not_arrived(identities(2), before, ahead_after);
  ASSERT_EQ(behind.size(), 1u);
  EXPECT_EQ(behind[0].last.who.rank, 0);
  // No file at all: named from the identities.
  const std::vector<std::optional<Heartbeat>> missing{beat(0, 5, Phase::Reduce, 31, 2), std::nullopt};
  const auto none = not_arrived(identities(2), before, missing);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].last.who.describe(), "rank 1 (host node1, dp 1, tp 0, pp 0)");
  EXPECT_NE(none[0].why.find("no heartbeat file"), std::string::npos);
}

TEST(Stragglers, TheSlowestAgainstTheOthersMedian) {
  const auto c = slowest_rank({10.0, 31.0, 12.0, 11.0});
  EXPECT_EQ(c.slowest, 1);
  EXPECT_DOUBLE_EQ(c.median_ms, 11.0);  // of 10, 11, 12
  EXPECT_DOUBLE_EQ(c.ratio, 31.0 / 11.0);
  const auto two = slowest_rank({4.0, 6.0});  // two ranks: against the other one
  EXPECT_EQ(two.slowest, 1);
  EXPECT_DOUBLE_EQ(two.ratio, 1.5);
  EXPECT_DOUBLE_EQ(slowest_rank({7.0}).ratio, 0.0);  // one rank: nobody to compare with
}

}  // namespace
}  // namespace strata
