#pragma once
// Grow-only temporary buffers for kernels that need working space (the two-level reductions, the embedding
// gradient's sort): allocating per call would cost a cudaMalloc and a stream synchronisation on GPUs. One buffer
// per element type and slot, reused by every kernel: a kernel may use a slot only until it returns (kernels are
// issued from the training thread, one after another). Released at Kokkos::finalize, before the memory spaces go.
#include <cstddef>

#include "kernels/common.hpp"

namespace strata {

enum class ScratchSlot { First, Second };

// n elements of slot `slot`, contents undefined.
template <class T>
Vec<T> kernel_scratch(size_t n, ScratchSlot slot = ScratchSlot::First) {
  static Vec<T> buffers[2];
  static bool hooked = false;
  if (!hooked) {
    hooked = true;
    Kokkos::push_finalize_hook([] {
      for (auto& b : buffers) b = {};
    });
  }
  Vec<T>& buffer = buffers[int(slot)];
  if (buffer.extent(0) < n)
    buffer = Vec<T>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "strata::kernel_scratch"), n);
  return Vec<T>(buffer.data(), n);
}

}  // namespace strata
