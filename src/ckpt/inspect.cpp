#include "ckpt/inspect.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <mutex>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace strata::ckpt {
namespace {
using Lock = std::lock_guard<std::recursive_mutex>;

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Shape, element type and stored checksum of one dataset, without reading its data.
struct DatasetInfo {
  std::vector<int64_t> shape;
  std::string dtype, checksum;
};

DatasetInfo dataset_info(hid_t file, const std::string& path, const std::string& dataset,
                         const std::vector<int64_t>& expected_shape) {
  Lock lock(hdf5_mutex());
  STRATA_CHECK(h5::exists(file, dataset), "{}: tensor '{}' is missing", path, dataset);
  DatasetInfo info;
  try {
    const auto dims = h5::dataset_shape(file, dataset, path);
    info.shape.assign(dims.begin(), dims.end());
    h5::Handle ds(STRATA_H5(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT)), H5Dclose);
    info.dtype = h5::element_type_name(ds);
    STRATA_CHECK(h5::has_attr(ds, "checksum"), "{}: tensor '{}' has no 'checksum' attribute", path, dataset);
    info.checksum = h5::read_attr_string(ds, "checksum", path + ": " + dataset);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(path, 0) == 0) throw;  // already names the file
    STRATA_FAIL("{}: tensor '{}' cannot be read: {}", path, dataset, what);
  }
  STRATA_CHECK(info.shape == expected_shape, "{}: tensor '{}' has shape {}, expected {} (from the model attributes)",
               path, dataset, shape_text(info.shape), shape_text(expected_shape));
  STRATA_CHECK(info.dtype == "float32", "{}: tensor '{}' is {}, expected float32", path, dataset, info.dtype);
  return info;
}

}  // namespace

const std::vector<std::string>& checkpoint_groups() {
  static const std::vector<std::string> groups{"params", "adam_m", "adam_v", "prune_mask"};
  return groups;
}

std::string tensor_checksum(const float* values, int64_t n) {
  uint64_t sum = 0;
  sum += hash_contiguous(values, n, 0);
  return fmt::format("{:016x}", sum);
}

CheckedTensor read_checkpoint_tensor(hid_t file, const std::string& path, const std::string& dataset,
                                     const std::vector<int64_t>& expected_shape) {
  const DatasetInfo info = dataset_info(file, path, dataset, expected_shape);
  CheckedTensor t;
  t.shape = info.shape;
  t.stored_checksum = info.checksum;
  try {
    t.values = h5::read_dataset<float>(file, dataset, path);
  } catch (const Error& e) {
    STRATA_FAIL("{}: tensor '{}' cannot be read (truncated or corrupt file?): {}", path, dataset, e.what());
  }
  STRATA_CHECK(int64_t(t.values.size()) == numel(info.shape), "{}: tensor '{}' holds {} elements, expected {}", path,
               dataset, t.values.size(), numel(info.shape));
  t.computed_checksum = tensor_checksum(t.values.data(), int64_t(t.values.size()));
  return t;
}

InspectReport inspect_checkpoint(const std::string& path, bool verify,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  InspectReport r;
  r.path = path;
  r.verified = verify;
  r.meta = read_checkpoint_meta(path);  // checks the format and version; errors name the file and the field
  auto file = h5::open_file(path);
  r.format_version = h5::read_attr_int(file, "format_version", path);
  const std::vector<TensorSpec>& all = r.meta.tensors;
  for (const auto& group : checkpoint_groups())
    for (const auto& spec : all) {
      const auto& masked = r.meta.masked;
      if (group == "prune_mask" && std::find(masked.begin(), masked.end(), spec.name) == masked.end()) continue;
      TensorReport t;
      t.group = group;
      t.name = spec.name;
      t.dataset = group + "/" + spec.name;
      if (verify) {
        const CheckedTensor c = read_checkpoint_tensor(file, path, t.dataset, spec.global_shape);
        t.shape = c.shape;
        t.stored_checksum = c.stored_checksum;
        t.computed_checksum = c.computed_checksum;
        t.verified = true;
        t.ok = c.ok();
      } else {
        const DatasetInfo info = dataset_info(file, path, t.dataset, spec.global_shape);
        t.shape = info.shape;
        t.stored_checksum = info.checksum;
      }
      t.dtype = "float32";
      t.bytes = numel(t.shape) * int64_t(sizeof(float));
      r.total_bytes += t.bytes;
      if (!t.ok) {
        if (r.mismatches == 0) r.first_mismatch = t.dataset;
        ++r.mismatches;
      }
      r.tensors.push_back(std::move(t));
      if (progress) progress(int64_t(r.tensors.size()), int64_t(all.size()) * 3 + int64_t(r.meta.masked.size()));
    }
  return r;
}

std::string format_inspect_report(const InspectReport& r) {
  const CheckpointMeta& m = r.meta;
  std::string out;
  auto line = [&out](const char* key, const std::string& value) { out += fmt::format("{:<18}{}\n", key, value); };
  line("file:", r.path);
  line("format:", fmt::format("{} version {}", kCheckpointFormat, r.format_version));
  line("library version:", m.library_version);
  line("step:", std::to_string(m.step));
  line("consumed samples:", std::to_string(m.consumed_samples));
  line("adam steps:", std::to_string(m.adam_steps));
  line("layout:", fmt::format("dp {} x tp {} x pp {}{}", m.dp, m.tp, m.pp, m.zero1 ? " (+ZeRO-1)" : ""));
  line("lr:", fmt::format("{:.6g} (schedule {})", m.lr, m.lr_schedule));
  std::string model;
  for (const auto& [name, value] : model_fields(m.model))
    if (name != "kind") model += fmt::format("{}{} {}", model.empty() ? "" : ", ", name, format_value(value));
  line("model kind:", m.model.kind);
  line("model:", model);
  line("seeds:", fmt::format("train {}, data {} (shuffle {})", m.train_seed, m.data_seed, m.shuffle ? "on" : "off"));
  out += "\n";

  size_t name_w = 6, shape_w = 5;
  for (const auto& t : r.tensors) {
    name_w = std::max(name_w, t.dataset.size());
    shape_w = std::max(shape_w, shape_text(t.shape).size());
  }
  out += fmt::format("{:<{}}  {:<{}}  {:<7}  {:<16}  {}\n", "tensor", name_w, "shape", shape_w, "dtype", "checksum",
                     "status");
  for (const auto& t : r.tensors) {
    const std::string status = !t.verified ? "-" : t.ok ? "OK" : "MISMATCH (computed " + t.computed_checksum + ")";
    out += fmt::format("{:<{}}  {:<{}}  {:<7}  {:<16}  {}\n", t.dataset, name_w, shape_text(t.shape), shape_w, t.dtype,
                       t.stored_checksum, status);
  }
  out += fmt::format("total: {} tensors, {:.2f} MiB\n", r.tensors.size(), double(r.total_bytes) / (1024.0 * 1024.0));
  if (!r.verified)
    out += "checksums: not verified (--no-verify)\n";
  else if (r.mismatches == 0)
    out += fmt::format("checksums: all {} OK\n", r.tensors.size());
  else
    out += fmt::format("checksums: {} mismatches (first: {})\n", r.mismatches, r.first_mismatch);
  return out;
}

}  // namespace strata::ckpt
