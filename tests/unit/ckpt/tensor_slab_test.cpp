// select_local_range (ckpt/tensor_slab.hpp) on tensors of rank 3 and 4 (convolution weights): every flat range
// [begin, end) selects exactly those elements, in file order.
#include "ckpt/tensor_slab.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace strata::ckpt {
namespace {

TensorSpec replicated(std::vector<int64_t> shape) {
  TensorSpec s;
  s.name = "t";
  s.shape = s.global_shape = shape;
  s.shard = ShardMap{-1, 1, 0, 1, shape[0], s.numel() / shape[0]};
  return s;
}

TEST(TensorSlab, EveryFlatRangeOfA4DTensorSelectsExactlyIt) {
  for (const auto& shape :
       {std::vector<int64_t>{3, 2, 3, 3}, std::vector<int64_t>{4, 5, 2}, std::vector<int64_t>{2, 1, 1, 7}}) {
    const TensorSpec spec = replicated(shape);
    const int64_t n = spec.numel();
    const std::vector<hsize_t> dims(shape.begin(), shape.end());
    // A file dataset whose values are their own flat index: reading the selection gives the indices in file order.
    const std::string path = ::testing::TempDir() + "strata-tensor-slab-test.h5";
    auto file = h5::create_file(path);
    std::vector<double> index(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) index[size_t(i)] = double(i);
    h5::write_dataset<double>(file, "t", dims, index.data());
    h5::Handle ds(H5Dopen2(file, "t", H5P_DEFAULT), H5Dclose);
    for (int64_t begin = 0; begin <= n; ++begin)
      for (int64_t end = begin; end <= n; ++end) {
        h5::Handle space(H5Dget_space(ds), H5Sclose);
        select_local_range(space, spec, begin, end);
        ASSERT_EQ(H5Sget_select_npoints(space), end - begin) << begin << ".." << end;
        if (end == begin) continue;
        const hsize_t count = hsize_t(end - begin);
        h5::Handle mem(H5Screate_simple(1, &count, nullptr), H5Sclose);
        std::vector<double> got(count);
        ASSERT_GE(H5Dread(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, got.data()), 0);
        for (int64_t k = 0; k < end - begin; ++k) ASSERT_EQ(got[size_t(k)], double(begin + k)) << begin << ".." << end;
      }
  }
}

// A conv weight [O, C, k, k] split over 2 ranks by output channels (rows) or input channels (trailing dims): every
// local range selects the global elements its ShardMap names, in order.
TEST(TensorSlab, SplitTensorsOfRankFourSelectTheirShardMapsElements) {
  const std::vector<int64_t> global{4, 6, 2, 3};
  const std::vector<hsize_t> dims(global.begin(), global.end());
  const int64_t n = 4 * 6 * 2 * 3;
  const std::string path = ::testing::TempDir() + "strata-tensor-slab-split.h5";
  auto file = h5::create_file(path);
  std::vector<double> index(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) index[size_t(i)] = double(i);
  h5::write_dataset<double>(file, "t", dims, index.data());
  h5::Handle ds(H5Dopen2(file, "t", H5P_DEFAULT), H5Dclose);
  for (int split : {0, 1})
    for (int rank = 0; rank < 2; ++rank) {
      TensorSpec spec;
      spec.name = "t";
      spec.global_shape = global;
      spec.shape = global;
      spec.shape[size_t(split)] /= 2;
      spec.shard = ShardMap{split, 1, rank, 2, spec.shape[0], spec.numel() / spec.shape[0]};
      const int64_t m = spec.numel();
      for (int64_t begin = 0; begin <= m; ++begin)
        for (int64_t end = begin; end <= m; end += 5) {
          h5::Handle space(H5Dget_space(ds), H5Sclose);
          select_local_range(space, spec, begin, end);
          ASSERT_EQ(H5Sget_select_npoints(space), end - begin);
          if (end == begin) continue;
          const hsize_t count = hsize_t(end - begin);
          h5::Handle mem(H5Screate_simple(1, &count, nullptr), H5Sclose);
          std::vector<double> got(count);
          ASSERT_GE(H5Dread(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, got.data()), 0);
          for (int64_t k = 0; k < end - begin; ++k)
            ASSERT_EQ(got[size_t(k)], double(spec.shard.global_index(begin + k)))
                << "split " << split << " rank " << rank << " range " << begin << ".." << end;
        }
    }
}

}  // namespace
}  // namespace strata::ckpt
