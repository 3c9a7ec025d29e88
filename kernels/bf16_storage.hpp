#pragma once
// Activations kept as bfloat16 between forward and backward (train.precision = bf16): packed with the same
// rounding the bf16 GEMMs apply to their operands, widened back exactly, so a GEMM that rounds the widened value
// again sees the bits it would have seen. Half the memory of float.
#include "kernels/bf16.hpp"
#include "kernels/common.hpp"

namespace strata {

using Bf16Vec = Kokkos::View<bf16_bits*, Kokkos::LayoutRight, MemSpace>;

// out[n] = bf16(in[n]) (round to nearest even)
inline void pack_bf16(const Bf16Vec& out, const Vec<float>& in, size_t n) {
  Kokkos::parallel_for(
      "strata::bf16::pack", range(n), KOKKOS_LAMBDA(const int64_t i) { out(i) = float_to_bf16(in(i)); });
}

// out[n] = float(in[n]) (exact)
inline void unpack_bf16(const Vec<float>& out, const Bf16Vec& in, size_t n) {
  Kokkos::parallel_for(
      "strata::bf16::unpack", range(n), KOKKOS_LAMBDA(const int64_t i) { out(i) = bf16_to_float(in(i)); });
}

}  // namespace strata
