#pragma once
// Types shared by every kernel. Tensors are flat, contiguous 1-D Views over the default memory space;
// each kernel states the logical shape of its arguments in a comment at its signature (row-major).
#include <Kokkos_Core.hpp>

#include "kernels/math.hpp"

namespace strata {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;

template <class T>
using Vec = Kokkos::View<T*, Kokkos::LayoutRight, MemSpace>;

template <class T>
using HostVec = typename Vec<T>::HostMirror;

// A 1-D range policy on the default execution space.
inline Kokkos::RangePolicy<ExecSpace> range(size_t n) { return Kokkos::RangePolicy<ExecSpace>(0, n); }

// An unmanaged view of n elements starting at ptr (tensors inside the contiguous parameter buffer).
template <class T>
Vec<T> view_of(T* ptr, size_t n) {
  return Vec<T>(ptr, n);
}

}  // namespace strata
