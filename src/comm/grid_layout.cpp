#include "comm/grid_layout.hpp"

#include "core/error.hpp"

namespace strata {

GridLayout::GridLayout(int world_size, int dp, int tp, int pp) : dp_(dp), tp_(tp), pp_(pp) {
  STRATA_CHECK(dp >= 1 && tp >= 1 && pp >= 1, "parallel.dp = {}, parallel.tp = {}, parallel.pp = {}: each must be >= 1",
               dp, tp, pp);
  STRATA_CHECK(dp * tp * pp == world_size,
               "parallel layout does not fit the job: pp x dp x tp = {} x {} x {} = {}, but the job has {} ranks", pp, dp,
               tp, pp * dp * tp, world_size);
}

GridCoord GridLayout::coord_of(int rank) const {
  STRATA_CHECK(rank >= 0 && rank < world_size(), "rank {} outside a grid of {} ranks", rank, world_size());
  return {rank / (dp_ * tp_), (rank / tp_) % dp_, rank % tp_};
}

}  // namespace strata
