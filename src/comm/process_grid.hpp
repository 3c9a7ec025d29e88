#pragma once
// The process grid: this rank's coordinates and one communicator per parallel dimension, split from a
// duplicate of the communicator passed in and owned here (DESIGN.md principle 5). Each group has two: an MPI one
// for host values (losses, norms, metrics, flags) and one for device buffers (gradient buckets, ZeRO-1 shards,
// tensor-parallel sums, pipeline activations), chosen by parallel.device_comm: NCCL, host-staged MPI, or the MPI
// one itself (host memory, or a CUDA-aware MPI).
#include <memory>
#include <vector>

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

  // The same groups for device buffers (memory of Kokkos' default memory space).
  Communicator& device_dp() { return *device_dp_; }
  Communicator& device_tp() { return *device_tp_; }
  Communicator& device_pp() { return *device_pp_; }
  Communicator* device_embedding() { return device_embedding_; }
  enum class DeviceComm { Mpi, Nccl, Staged };
  // "MPI", "NCCL" or "MPI (host-staged)": for the start-up report.
  const char* device_backend() const;

 private:
  Communicator* device_group(MpiCommunicator* mpi);

  std::unique_ptr<MpiCommunicator> world_;
  GridLayout layout_;
  GridCoord coord_;
  std::unique_ptr<MpiCommunicator> dp_, tp_, pp_, embedding_;
  DeviceComm device_comm_ = DeviceComm::Mpi;
  std::vector<std::unique_ptr<Communicator>> owned_device_groups_;  // NCCL or staged; empty when MPI serves both
  Communicator *device_dp_ = nullptr, *device_tp_ = nullptr, *device_pp_ = nullptr, *device_embedding_ = nullptr;
};

}  // namespace strata
