#include "comm/grid_layout.hpp"

#include "core/error.hpp"

namespace strata {

GridLayout::GridLayout(int world_size, int dp, int tp, int pp) : dp_(dp), tp_(tp), pp_(pp) {
  STRATA_CHECK((dp >= 1 || dp == -1) && tp >= 1 && pp >= 1,
               "parallel.dp = {}, parallel.tp = {}, parallel.pp = {}: each must be >= 1 (dp may be -1: whatever is "
               "left)",
               dp, tp, pp);
  STRATA_CHECK(world_size >= 1, "a job of {} ranks", world_size);
  if (dp == -1) {
    STRATA_CHECK(world_size % (tp * pp) == 0,
                 "parallel.dp = -1 (whatever is left) needs the job's {} ranks to be a multiple of pp x tp = {} x {} "
                 "= {}",
                 world_size, pp, tp, pp * tp);
    dp_ = world_size / (tp * pp);
  }
  STRATA_CHECK(dp_ * tp * pp == world_size,
               "parallel layout does not fit the job: parallel.pp x parallel.dp x parallel.tp = {} x {} x {} = {}, but "
               "the job has {} ranks",
               pp, dp_, tp, pp * dp_ * tp, world_size);
}

GridCoord GridLayout::coord_of(int rank) const {
  STRATA_CHECK(rank >= 0 && rank < world_size(), "rank {} outside a grid of {} ranks", rank, world_size());
  return {rank / (dp_ * tp_), (rank / tp_) % dp_, rank % tp_};
}

}  // namespace strata
