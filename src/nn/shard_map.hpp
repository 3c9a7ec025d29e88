#pragma once
// Where a tensor-parallel rank's elements sit in the global tensor (DESIGN.md principle 6). A tensor is
// replicated, or split over the tp ranks along rows (dim 0) or columns (dim 1); the split dimension may
// consist of several equal blocks each split separately (the fused q|k|v weight: 3 blocks, so that a rank
// holds the q, k and v rows of its own heads).
#include <Kokkos_Core.hpp>

#include <cstdint>

namespace strata {

struct ShardMap {
  int split_dim = -1;  // -1: replicated; 0: rows; 1: columns
  int blocks = 1;
  int rank = 0, ranks = 1;
  int64_t rows = 1, cols = 1;  // the local tensor as rows x cols (a 1-D tensor: n x 1)

  bool replicated() const { return split_dim < 0 || ranks == 1; }

  // Global flat (row-major) index of local flat index j.
  KOKKOS_INLINE_FUNCTION int64_t global_index(int64_t j) const {
    if (split_dim < 0 || ranks == 1) return j;
    const int64_t i = j / cols, c = j % cols;
    if (split_dim == 0) {
      const int64_t per_block = rows / blocks, b = i / per_block, w = i % per_block;
      return ((b * ranks + rank) * per_block + w) * cols + c;
    }
    const int64_t per_block = cols / blocks, b = c / per_block, w = c % per_block;
    return i * cols * ranks + (b * ranks + rank) * per_block + w;
  }
};

}  // namespace strata
