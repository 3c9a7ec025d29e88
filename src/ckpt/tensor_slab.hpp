#pragma once
// Which elements of a global tensor (as stored in a checkpoint) a contiguous range of a rank's local tensor covers,
// as an HDF5 selection. A ShardMap's local -> global index map is strictly increasing, so the selected elements in
// file order are exactly the local range in memory order: one H5Dwrite / H5Dread moves the range, whatever the
// tensor-parallel split. The selection is a union of at most 3 * blocks rectangles.
#include <hdf5.h>

#include <cstdint>
#include <vector>

#include "nn/param_buffer.hpp"

namespace strata::ckpt {

// Selects, in `file_space` (the global tensor's dataspace), the global elements of local flat elements [begin, end)
// of tensor `spec`; an empty range selects none. A tensor of rank 3 or more (a convolution weight) is split, if at
// all, along dim 0 or the flattened trailing dims: its range becomes flat ranges of the global tensor, each
// selected as a union of boxes.
void select_local_range(hid_t file_space, const TensorSpec& spec, int64_t begin, int64_t end);

}  // namespace strata::ckpt
