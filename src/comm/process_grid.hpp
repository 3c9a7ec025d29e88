#pragma once
// The process grid: this rank's coordinates and one communicator per parallel dimension, split from a
// duplicate of the communicator passed in and owned here (DESIGN.md principle 5).
#include <memory>

#include "comm/communicator.hpp"
#include "comm/grid_layout.hpp"
#include "core/config.hpp"

namespace strata {

class ProcessGrid {
 public:
  // Validates the layout against the size of `world` (throws before any work) and splits the groups.
  ProcessGrid(MPI_Comm world, const ParallelConfig& parallel);

  const GridLayout& layout() const { return layout_; }
  const GridCoord& coord() const { return coord_; }
  Communicator& world() { return *world_; }
  MPI_Comm world_comm() const { return world_->comm(); }  // for collective I/O (parallel HDF5)
  Communicator& dp() { return *dp_; }                     // ranks with the same (pp, tp)
  Communicator& tp() { return *tp_; }                     // ranks with the same (pp, dp)
  Communicator& pp() { return *pp_; }                     // ranks with the same (dp, tp)
  // The first and the last pipeline stage of this rank's (dp, tp): the two holders of the tied token
  // embedding. Null on the other stages, and when there is one stage.
  Communicator* embedding() { return embedding_.get(); }

 private:
  std::unique_ptr<MpiCommunicator> world_;
  GridLayout layout_;
  GridCoord coord_;
  std::unique_ptr<MpiCommunicator> dp_, tp_, pp_, embedding_;
};

}  // namespace strata
