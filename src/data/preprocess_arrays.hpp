#pragma once
// Arrays (.npy or headerless raw files) -> an array dataset of kind `images` or `sequences` (array_dataset.hpp,
// docs/dataset-format.md): validate, split into train and val, optionally change layout and resize, compute the
// normalization statistics of the train split, write `shards` HDF5 shards per split and then the manifest.
// Runs on every rank of an MPI communicator; the dataset is the same for any number of ranks.
//
// For docs/dataset-format.md ("Array preprocessing", `strata preprocess images|sequences`):
//   Inputs: x and y as .npy files, or headerless little-endian C-order files given a dtype and a shape (raw y
//   without a shape: 1-D, N = file size / item size).
//   images:    x [N, H, W] (one channel) or [N, C, H, W] ([N, H, W, C] with channels_last); y [N].
//   sequences: x [N, T, F] ([N, T]: F = 1); y [N] (one label per sequence) or [N, T] (one per step).
//   x: any numeric dtype; stored as uint8 when it is uint8 and no resize is asked, else as float32. Every float
//   value must be finite (else an error naming the file, the sample and the element). y: an integer dtype, every
//   label in [0, num_classes) (num_classes 0: max label + 1); an error names the file and the sample. x and y must
//   hold the same N >= 2.
//   Resize (images, resize_h x resize_w): bilinear, align_corners=false (image_ops.hpp), x then stored as float32.
//   Split: n_val = clamp(round(N * val_fraction), 1, N - 1); val = the first n_val entries of
//   seeded_permutation(N, seed, 0) (batch_sampler.hpp); train = the rest; both keep input order.
//   Normalization: mean and population std (float64) of the train split after resize, per channel (images) or per
//   feature F (sequences), stored as `normalization` in the manifest.
//   Shards: each split is cut into `shards` contiguous pieces, shard k = samples [n*k/S, n*(k+1)/S) of the split
//   (each must hold >= 1 sample), files `train-00000.h5`, `val-00000.h5`, ...; manifest.json is written last.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

struct ArrayPreprocessOptions {
  std::string kind = "images";  // "images" or "sequences"
  std::string x_path, y_path;   // .npy files; raw headerless files when raw_x_dtype / raw_y_dtype is set
  // Raw x: dtype ("uint8", "int8", "uint16", "int16", "int32", "int64", "float32", "float64") and full shape,
  // e.g. {N, C, H, W}; the file size must match exactly.
  std::string raw_x_dtype;
  std::vector<int64_t> raw_x_shape;
  // Raw y: dtype and shape; an empty shape with a dtype set means 1-D, N = file size / item size.
  std::string raw_y_dtype;
  std::vector<int64_t> raw_y_shape;
  std::string output;              // the dataset directory (created if needed)
  bool channels_last = false;      // images: x is [N, H, W, C]
  int resize_h = 0, resize_w = 0;  // images, both > 0: bilinear resize of every image (x stored as float32)
  int64_t num_classes = 0;         // 0: max label + 1
  double val_fraction = 0.1;       // in (0, 1)
  uint64_t seed = 0;               // which samples go to val
  int shards = 1;                  // shards per split, >= 1
  bool progress = false;           // periodic progress lines on stderr (rank 0)
};

struct ArrayPreprocessReport {
  int64_t samples = 0, train_samples = 0, val_samples = 0, num_classes = 0;
  std::vector<int64_t> sample_shape;  // images [C, H, W] (after resize); sequences [T, F]
  std::string dtype;                  // stored dtype of x: "uint8" or "float32"
  std::vector<double> mean, std;      // per channel / feature, train split
  double seconds = 0;
};

// Collective over comm (every rank gets the same report). Every rank reads the inputs whole; shard k of each
// split is written by rank k % size; rank 0 writes manifest.json after every shard exists. An existing manifest
// in `output` is replaced only then. An error on any rank makes every rank throw (no rank is left waiting).
ArrayPreprocessReport preprocess_arrays(const ArrayPreprocessOptions& options, MPI_Comm comm = MPI_COMM_SELF);

}  // namespace strata::data
