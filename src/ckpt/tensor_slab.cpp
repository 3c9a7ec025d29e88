#include "ckpt/tensor_slab.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace strata::ckpt {
namespace {
struct Rect {
  int64_t r0, nr, c0, nc;  // global rows [r0, r0+nr) x columns [c0, c0+nc)
};

// Local rows [i0, i1) x local columns [c0, c1) -> global rectangles (split at block boundaries).
void map_rect(const ShardMap& m, int64_t i0, int64_t i1, int64_t c0, int64_t c1, std::vector<Rect>& out) {
  if (i0 >= i1 || c0 >= c1) return;
  if (m.replicated()) {
    out.push_back({i0, i1 - i0, c0, c1 - c0});
  } else if (m.split_dim == 0) {
    const int64_t per = m.rows / m.blocks;
    for (int64_t b = i0 / per; b * per < i1; ++b) {
      const int64_t lo = std::max(i0, b * per), hi = std::min(i1, (b + 1) * per);
      out.push_back({(b * m.ranks + m.rank) * per + (lo - b * per), hi - lo, c0, c1 - c0});
    }
  } else {
    const int64_t per = m.cols / m.blocks;
    for (int64_t b = c0 / per; b * per < c1; ++b) {
      const int64_t lo = std::max(c0, b * per), hi = std::min(c1, (b + 1) * per);
      out.push_back({i0, i1 - i0, (b * m.ranks + m.rank) * per + (lo - b * per), hi - lo});
    }
  }
}

std::vector<Rect> rectangles(const TensorSpec& spec, int64_t begin, int64_t end) {
  const ShardMap& m = spec.shard;
  STRATA_CHECK(0 <= begin && begin <= end && end <= spec.numel() && m.rows * m.cols == spec.numel(),
               "tensor '{}': local range [{}, {}) outside its {} elements", spec.name, begin, end, spec.numel());
  std::vector<Rect> out;
  if (begin == end) return out;
  const int64_t cols = m.cols;
  const int64_t first_row = begin / cols, last_row = (end - 1) / cols;
  if (first_row == last_row) {
    map_rect(m, first_row, first_row + 1, begin % cols, (end - 1) % cols + 1, out);
    return out;
  }
  // A partial first row, the full rows between, a partial last row.
  map_rect(m, first_row, first_row + 1, begin % cols, cols, out);
  map_rect(m, first_row + 1, last_row, 0, cols, out);
  map_rect(m, last_row, last_row + 1, 0, (end - 1) % cols + 1, out);
  return out;
}
// ORs into `space` the elements [lo, hi) (flat, row-major) of the box dims[d..] at the leading indices `prefix`
// (dims[0..d)): whole trailing boxes where the range covers them, recursing into the partial ends.
void select_flat(hid_t space, const std::vector<hsize_t>& dims, size_t d, std::vector<hsize_t>& prefix, hsize_t lo,
                 hsize_t hi) {
  if (lo >= hi) return;
  const size_t rank = dims.size();
  hsize_t inner = 1;
  for (size_t k = d + 1; k < rank; ++k) inner *= dims[k];
  auto box = [&](hsize_t first, hsize_t count) {  // indices first .. first+count-1 of dim d, whole dims after it
    std::vector<hsize_t> start(prefix), extent(prefix.size(), 1);
    start.push_back(first);
    extent.push_back(count);
    for (size_t k = d + 1; k < rank; ++k) start.push_back(0), extent.push_back(dims[k]);
    STRATA_H5(H5Sselect_hyperslab(space, H5S_SELECT_OR, start.data(), nullptr, extent.data(), nullptr));
  };
  hsize_t first = lo / inner, last = (hi - 1) / inner;  // the indices of dim d the range touches
  auto partial = [&](hsize_t index, hsize_t from, hsize_t to) {
    prefix.push_back(index);
    select_flat(space, dims, d + 1, prefix, from, to);
    prefix.pop_back();
  };
  if (first == last) {
    if (hi - lo == inner)
      box(first, 1);
    else
      partial(first, lo % inner, (hi - 1) % inner + 1);
    return;
  }
  if (lo % inner != 0) partial(first++, lo % inner, inner);
  const bool tail = hi % inner != 0;
  if (tail) partial(last, 0, hi % inner);
  const hsize_t end = tail ? last : last + 1;
  if (end > first) box(first, end - first);
}

}  // namespace

void select_local_range(hid_t file_space, const TensorSpec& spec, int64_t begin, int64_t end) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  STRATA_H5(H5Sselect_none(file_space));
  const int rank = STRATA_H5(H5Sget_simple_extent_ndims(file_space));
  STRATA_CHECK(rank == int(spec.global_shape.size()) && rank >= 1,
               "tensor '{}': dataspace of rank {} for a tensor of rank {}", spec.name, rank, spec.global_shape.size());
  if (begin == 0 && end == spec.numel() && spec.shard.replicated()) {
    // The whole tensor: an "all" selection lets HDF5 and MPI-IO write one contiguous block without a derived type.
    STRATA_H5(H5Sselect_all(file_space));
    return;
  }
  for (const Rect& r : rectangles(spec, begin, end)) {
    if (rank > 2) {
      // In the [dim 0, rest] view of the global tensor, a rectangle of whole rows, or of part of one row, is one
      // flat range; part of several rows (a column split) is one flat range per row.
      const std::vector<hsize_t> dims(spec.global_shape.begin(), spec.global_shape.end());
      const int64_t cols = spec.global_numel() / spec.global_shape[0];
      std::vector<hsize_t> prefix;
      if (r.nr == 1 || r.nc == cols) {
        select_flat(file_space, dims, 0, prefix, hsize_t(r.r0 * cols + r.c0),
                    hsize_t((r.r0 + r.nr - 1) * cols + r.c0 + r.nc));
      } else {
        for (int64_t row = r.r0; row < r.r0 + r.nr; ++row)
          select_flat(file_space, dims, 0, prefix, hsize_t(row * cols + r.c0), hsize_t(row * cols + r.c0 + r.nc));
      }
    } else if (rank == 1) {
      // A 1-D tensor is rows x 1 in its ShardMap.
      hsize_t start = hsize_t(r.r0), count = hsize_t(r.nr);
      STRATA_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_OR, &start, nullptr, &count, nullptr));
    } else {
      hsize_t start[2] = {hsize_t(r.r0), hsize_t(r.c0)}, count[2] = {hsize_t(r.nr), hsize_t(r.nc)};
      STRATA_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_OR, start, nullptr, count, nullptr));
    }
  }
}

}  // namespace strata::ckpt
