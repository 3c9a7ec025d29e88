#include "cli/device_select.hpp"

#include <Kokkos_Core.hpp>

#include "core/error.hpp"

#if defined(KOKKOS_ENABLE_CUDA) && defined(STRATA_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace strata::cli {

std::optional<int> local_device(MPI_Comm world) {
  MPI_Comm node;
  STRATA_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int local_rank = 0;
  STRATA_MPI(MPI_Comm_rank(node, &local_rank));
  STRATA_MPI(MPI_Comm_free(&node));
#if defined(KOKKOS_ENABLE_CUDA) && defined(STRATA_HAVE_CUDA)
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  STRATA_CHECK(err == cudaSuccess, "no usable CUDA device for this rank: cudaGetDeviceCount: {}",
               cudaGetErrorString(err));
  STRATA_CHECK(devices > 0, "no CUDA device visible to this rank (CUDA_VISIBLE_DEVICES?)");
  return local_rank % devices;
#else
  (void)local_rank;
  return std::nullopt;
#endif
}

}  // namespace strata::cli
