#include "comm/process_grid.hpp"

#include <string>
#include <type_traits>

#include "comm/nccl_communicator.hpp"
#include "comm/staged_communicator.hpp"
#include "core/error.hpp"
#include "kernels/common.hpp"

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

#ifdef STRATA_HAVE_CUDA
constexpr bool kHaveNccl = true;
#else
constexpr bool kHaveNccl = false;
#endif

// parallel.device_comm resolved for this build.
ProcessGrid::DeviceComm resolve_device_comm(const std::string& asked) {
  using D = ProcessGrid::DeviceComm;
  if (asked == "auto") return !kDeviceMemory ? D::Mpi : (kHaveNccl ? D::Nccl : D::Staged);
  STRATA_CHECK(asked != "nccl" || (kHaveNccl && kDeviceMemory), "parallel.device_comm = 'nccl': {}",
               !kHaveNccl ? "this Strata was built without CUDA/NCCL"
                          : "the model is in host memory (Kokkos has no GPU backend); use auto or mpi");
  // MPI directly on device pointers would need a CUDA-aware MPI and a fence before every operation; not supported.
  STRATA_CHECK(asked != "mpi" || !kDeviceMemory,
               "parallel.device_comm = 'mpi': the model is in GPU memory; use nccl, staged (MPI through host copies) "
               "or auto");
  return asked == "nccl" ? D::Nccl : asked == "mpi" ? D::Mpi : D::Staged;
}

}  // namespace

const char* ProcessGrid::device_backend() const {
  return device_comm_ == DeviceComm::Mpi ? "MPI" : device_comm_ == DeviceComm::Nccl ? "NCCL" : "MPI (host-staged)";
}

Communicator* ProcessGrid::device_group(MpiCommunicator* mpi) {
  if (mpi == nullptr) return nullptr;
  if (device_comm_ == DeviceComm::Mpi) return mpi;
  if (device_comm_ == DeviceComm::Staged) {
    owned_device_groups_.push_back(std::make_unique<StagedCommunicator>(*mpi));
  } else {
#ifdef STRATA_HAVE_CUDA
    owned_device_groups_.push_back(std::make_unique<NcclCommunicator>(*mpi));
#endif
  }
  return owned_device_groups_.back().get();
}

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

  device_comm_ = resolve_device_comm(p.device_comm);
  // NCCL communicators are created collectively over each group, in the same order on every rank.
  device_dp_ = device_group(dp_.get());
  device_tp_ = device_group(tp_.get());
  device_pp_ = device_group(pp_.get());
  device_embedding_ = device_group(embedding_.get());
}

}  // namespace strata
