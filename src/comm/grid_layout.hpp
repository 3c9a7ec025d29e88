#pragma once
// Rank arithmetic of the process grid (DESIGN.md principle 5): world = pp x dp x tp, tp innermost, so the
// tp ranks of a group are neighbours (same node). Pure arithmetic, testable without MPI.
namespace strata {

struct GridCoord {
  int pp, dp, tp;
};

class GridLayout {
 public:
  // Throws strata::Error, with the formula and the numbers, unless pp*dp*tp == world_size and all >= 1.
  // dp = -1 means "whatever is left": dp = world_size / (tp * pp), an error naming the numbers if that
  // does not divide. dp() is always the resolved value.
  GridLayout(int world_size, int dp, int tp, int pp);

  int world_size() const { return pp_ * dp_ * tp_; }
  int dp() const { return dp_; }
  int tp() const { return tp_; }
  int pp() const { return pp_; }

  GridCoord coord_of(int rank) const;
  int rank_of(const GridCoord& c) const { return (c.pp * dp_ + c.dp) * tp_ + c.tp; }

 private:
  int dp_, tp_, pp_;
};

}  // namespace strata
