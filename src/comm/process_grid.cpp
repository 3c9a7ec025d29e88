#include "comm/process_grid.hpp"

#include "core/error.hpp"

namespace strata {
namespace {

int world_size_of(MPI_Comm comm) {
  int size = 0;
  STRATA_MPI(MPI_Comm_size(comm, &size));
  return size;
}

std::unique_ptr<MpiCommunicator> split(MPI_Comm comm, int color, int key) {
  MPI_Comm out = MPI_COMM_NULL;
  STRATA_MPI(MPI_Comm_split(comm, color, key, &out));
  return MpiCommunicator::adopt(out);
}

}  // namespace

ProcessGrid::ProcessGrid(MPI_Comm world, const ParallelConfig& p)
    : world_(std::make_unique<MpiCommunicator>(world)),
      layout_(world_size_of(world), p.dp, p.tp, p.pp),
      coord_(layout_.coord_of(world_->rank())) {
  const MPI_Comm w = world_->comm();
  const auto& c = coord_;
  dp_ = split(w, c.pp * layout_.tp() + c.tp, c.dp);
  tp_ = split(w, c.pp * layout_.dp() + c.dp, c.tp);
  pp_ = split(w, c.dp * layout_.tp() + c.tp, c.pp);
  // Every rank takes part in the split; the middle stages get MPI_COMM_NULL back and keep no group.
  const bool holds_embedding = layout_.pp() > 1 && (c.pp == 0 || c.pp == layout_.pp() - 1);
  MPI_Comm tied = MPI_COMM_NULL;
  STRATA_MPI(MPI_Comm_split(w, holds_embedding ? c.dp * layout_.tp() + c.tp : MPI_UNDEFINED, c.pp, &tied));
  if (tied != MPI_COMM_NULL) embedding_ = MpiCommunicator::adopt(tied);
}

}  // namespace strata
