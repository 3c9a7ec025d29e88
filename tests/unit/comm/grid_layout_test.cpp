#include "comm/grid_layout.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <set>

#include "comm/process_grid.hpp"
#include "core/error.hpp"

namespace strata {
namespace {

TEST(GridLayout, TpIsInnermostThenDpThenPp) {
  GridLayout g(8, /*dp=*/2, /*tp=*/2, /*pp=*/2);
  // rank = (pp * dp_size + dp) * tp_size + tp
  EXPECT_EQ(g.rank_of({0, 0, 1}), 1);
  EXPECT_EQ(g.rank_of({0, 1, 0}), 2);
  EXPECT_EQ(g.rank_of({1, 0, 0}), 4);
  EXPECT_EQ(g.rank_of({1, 1, 1}), 7);
  const auto c = g.coord_of(6);
  EXPECT_EQ(c.pp, 1);
  EXPECT_EQ(c.dp, 1);
  EXPECT_EQ(c.tp, 0);
}

TEST(GridLayout, CoordinatesRoundTripForEveryRank) {
  for (auto [dp, tp, pp] : {std::tuple{3, 2, 1}, {1, 4, 2}, {2, 1, 3}, {1, 1, 1}}) {
    GridLayout g(dp * tp * pp, dp, tp, pp);
    std::set<std::tuple<int, int, int>> seen;
    for (int r = 0; r < g.world_size(); ++r) {
      const auto c = g.coord_of(r);
      EXPECT_EQ(g.rank_of(c), r);
      EXPECT_TRUE(c.dp < dp && c.tp < tp && c.pp < pp);
      seen.insert({c.pp, c.dp, c.tp});
    }
    EXPECT_EQ(int(seen.size()), g.world_size());
  }
}

TEST(GridLayout, WrongProductIsRejectedWithTheFormula) {
  try {
    GridLayout(6, 2, 2, 2);
    FAIL() << "expected strata::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 x 2 x 2 = 8, but the job has 6 ranks"), std::string::npos) << e.what();
  }
  EXPECT_THROW(GridLayout(1, 0, 1, 1), Error);
  EXPECT_THROW(GridLayout(4, 2, 2, 1).coord_of(4), Error);
}

TEST(GridLayout, DpMinusOneTakesWhateverIsLeft) {
  GridLayout a(8, -1, 2, 2);
  EXPECT_EQ(a.dp(), 2);
  EXPECT_EQ(a.world_size(), 8);
  GridLayout b(12, -1, 3, 1);
  EXPECT_EQ(b.dp(), 4);
  GridLayout c(6, -1, 1, 1);
  EXPECT_EQ(c.dp(), 6);
  GridLayout d(4, -1, 4, 1);
  EXPECT_EQ(d.dp(), 1);
  EXPECT_EQ(d.coord_of(3).tp, 3);
}

TEST(GridLayout, DpMinusOneThatDoesNotDivideNamesTheNumbers) {
  try {
    GridLayout(6, -1, 2, 2);
    FAIL() << "expected strata::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("6 ranks"), std::string::npos) << what;
    EXPECT_NE(what.find("2 x 2 = 4"), std::string::npos) << what;
  }
  EXPECT_THROW(GridLayout(4, -2, 1, 1), Error);
  EXPECT_THROW(GridLayout(4, -1, 0, 1), Error);
  EXPECT_THROW(GridLayout(4, -1, 1, -1), Error);
  EXPECT_THROW(GridLayout(2, -1, 4, 1), Error);  // tp * pp larger than the job
}

TEST(ProcessGrid, SingleRankHasSizeOneGroups) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  ASSERT_EQ(world, 1) << "unit tests run as one process";
  ProcessGrid grid(MPI_COMM_WORLD, ParallelConfig{});
  EXPECT_EQ(grid.world().size(), 1);
  EXPECT_EQ(grid.dp().size(), 1);
  EXPECT_EQ(grid.tp().size(), 1);
  EXPECT_EQ(grid.pp().size(), 1);
  float v[3] = {1, 2, 3};
  grid.dp().all_reduce_sum(v, 3);
  EXPECT_EQ(v[2], 3.0f);
  EXPECT_THROW(ProcessGrid(MPI_COMM_WORLD, ParallelConfig{2, 1, 1}), Error);
  ProcessGrid rest(MPI_COMM_WORLD, ParallelConfig{-1, 1, 1});
  EXPECT_EQ(rest.layout().dp(), 1);
}

}  // namespace
}  // namespace strata
