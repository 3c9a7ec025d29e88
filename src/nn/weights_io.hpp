#pragma once
// Model weights as HDF5: one float32 dataset per tensor, by its documented name and global shape,
// plus the model config as root attributes. Readable by h5py (docs/weights-format.md).
#include <string>

#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// Writes to `path` via a temporary name and a rename, so an interrupted save never leaves a partial file.
template <class T>
void save_weights(const std::string& path, const ParamBuffer<T>& params, const ModelConfig& model);

// Loads every tensor; throws naming the file and the first missing tensor, wrong shape or config mismatch.
template <class T>
void load_weights(const std::string& path, ParamBuffer<T>& params, const ModelConfig& model);

}  // namespace strata
