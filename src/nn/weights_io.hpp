#pragma once
// Model weights as HDF5: one float32 dataset per tensor, by its documented name and global shape,
// plus the model config as root attributes. Readable by h5py (docs/weights-format.md).
#include <hdf5.h>

#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// Writes every tensor at its global shape to `path` via a temporary name and a rename, so an interrupted save
// never leaves a partial file. Under tensor parallelism every rank of the group `tp` calls (the split tensors
// are gathered); under pipeline parallelism the ranks of the pipeline group `pp` whose `writer_group` is set
// call, and its first stage, which gets the other stages' tensors, writes; `stage_tensors(s)` names the tensors of
// stage s (their order on that stage, global shapes). Without groups, the caller writes.
using StageTensors = std::function<std::vector<TensorSpec>(int stage)>;
template <class T>
void save_weights(const std::string& path, const ParamBuffer<T>& params, const ModelConfig& model,
                  Communicator* tp = nullptr, Communicator* pp = nullptr, bool writer_group = true,
                  const StageTensors& stage_tensors = {});

// The root attributes of a weights file: format, format_version and the model fields.
void write_weights_header(hid_t file, const ModelConfig& model);

// Loads this rank's part of every tensor (any tensor-parallel split of the file's global tensors); throws
// naming the file and the first missing tensor, wrong shape or config mismatch.
template <class T>
void load_weights(const std::string& path, ParamBuffer<T>& params, const ModelConfig& model);

}  // namespace strata
