#pragma once
// Reading a checkpoint (ckpt/checkpoint.hpp) on one process, outside a training job: `strata inspect` lists its run
// state and every tensor with its shape and checksum, and recomputes the checksums; the exporters
// (ckpt/safetensors_export.hpp) read tensors through read_checkpoint_tensor so that every byte they write was
// checked against the checksum stored with it.
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ckpt/checkpoint.hpp"

namespace strata::ckpt {

// The tensor groups of a checkpoint, in file order: prune_mask holds only the pruned tensors' masks (meta.masked).
const std::vector<std::string>& checkpoint_groups();  // {"params", "adam_m", "adam_v", "prune_mask"}

struct TensorReport {
  std::string dataset;  // "params/h.0.attn.c_attn.weight"
  std::string group;    // "params"
  std::string name;     // "h.0.attn.c_attn.weight" (docs/weights-format.md)
  std::vector<int64_t> shape;
  std::string dtype;  // "float32"
  int64_t bytes = 0;
  std::string stored_checksum;    // the dataset's "checksum" attribute (16 hex digits)
  std::string computed_checksum;  // recomputed from the data; empty when not verified
  bool verified = false;
  bool ok = true;  // verified and equal, or not verified
};

struct InspectReport {
  std::string path;
  int64_t format_version = 0;
  CheckpointMeta meta;
  std::vector<TensorReport> tensors;  // every group's tensors, in file order
  int64_t total_bytes = 0;
  bool verified = false;
  int64_t mismatches = 0;
  std::string first_mismatch;  // dataset name of the first mismatching tensor, "" when none
};

// Reads the metadata and every tensor's shape, type and stored checksum; with `verify`, reads every tensor whole and
// recomputes its checksum (a mismatch is reported in the result, not thrown). Throws strata::Error naming the file
// (and the tensor) when the file is unreadable: not HDF5 or truncated, not a checkpoint, a tensor missing, of the
// wrong shape or type, without a checksum, or whose data cannot be read.
// progress (optional) is told (tensors done, tensors in all) after each tensor.
InspectReport inspect_checkpoint(const std::string& path, bool verify = true,
                                 const std::function<void(int64_t, int64_t)>& progress = {});

// The report as `strata inspect` prints it: header lines, a table of tensors, the total, and a last line
// "checksums: all N OK", "checksums: K mismatches (first: NAME)" or "checksums: not verified (--no-verify)".
std::string format_inspect_report(const InspectReport& report);

// One tensor read whole as float32, with its checksum recomputed and compared with the stored one.
struct CheckedTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::string stored_checksum, computed_checksum;
  bool ok() const { return stored_checksum == computed_checksum; }
};

// Reads dataset `dataset` ("params/wte") of the open checkpoint `file` (`path` names it in errors), checks that it
// is float32 with shape `expected_shape`, and hashes it. Throws naming the file and the dataset when it is missing,
// of another shape or type, without a checksum attribute or unreadable; a checksum mismatch is left to the caller.
CheckedTensor read_checkpoint_tensor(hid_t file, const std::string& path, const std::string& dataset,
                                     const std::vector<int64_t>& expected_shape);

// The checksum of a whole tensor as stored in the "checksum" attribute: 16 lowercase hex digits of the sum over
// elements of element_hash(flat index, value).
std::string tensor_checksum(const float* values, int64_t n);

}  // namespace strata::ckpt
