#pragma once
// Types shared by every kernel. Tensors are flat, contiguous 1-D Views over the default memory space;
// each kernel states the logical shape of its arguments in a comment at its signature (row-major).
#include <Kokkos_Core.hpp>

#include <type_traits>

#include "kernels/math.hpp"

// Vectorises a host reduction loop without -ffast-math (built with -fopenmp-simd; no OpenMP runtime).
// Only the marked loop may be reassociated; other compilers ignore the pragma.
#define STRATA_PRAGMA(x) _Pragma(#x)
#define STRATA_SIMD_REDUCE(op, ...) STRATA_PRAGMA(omp simd reduction(op : __VA_ARGS__))

namespace strata {

using ExecSpace = Kokkos::DefaultExecutionSpace;
using MemSpace = ExecSpace::memory_space;

template <class T>
using Vec = Kokkos::View<T*, Kokkos::LayoutRight, MemSpace>;

template <class T>
using HostVec = typename Vec<T>::HostMirror;

// How a kernel over rows (softmax, cross-entropy, LayerNorm) maps them: one thread per row with vectorised loops
// (the host), or one team per row whose threads share the row's reductions (GPUs, where a thread looping over a
// 50k-entry row would read it uncoalesced). Kernels take it as a template argument defaulting to the device's,
// so tests run both shapes on the host.
inline constexpr bool kDeviceMemory = !std::is_same_v<MemSpace, Kokkos::HostSpace>;
enum class RowShape { Thread, Team };
inline constexpr RowShape kRowShape = kDeviceMemory ? RowShape::Team : RowShape::Thread;
using TeamMember = Kokkos::TeamPolicy<ExecSpace>::member_type;
// Rows summed per chunk in the first level of the GPU-shaped (two-level, deterministic) column reductions: bias,
// LayerNorm and GroupNorm parameter gradients.
inline constexpr int64_t kRowChunk = 32;

// A 1-D range policy on the default execution space.
inline Kokkos::RangePolicy<ExecSpace> range(size_t n) { return Kokkos::RangePolicy<ExecSpace>(0, n); }

// An unmanaged view of n elements starting at ptr (tensors inside the contiguous parameter buffer).
template <class T>
Vec<T> view_of(T* ptr, size_t n) {
  return Vec<T>(ptr, n);
}

}  // namespace strata
