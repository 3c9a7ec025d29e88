#include "nn/weights_io.hpp"

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/model_attrs.hpp"

namespace strata {

void write_weights_header(hid_t file, const ModelConfig& model) {
  h5::write_attr(file, "format", std::string("strata-weights"));
  h5::write_attr(file, "format_version", int64_t(1));
  write_model_attrs(file, model, "");
}

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The whole tensor from every tp rank's part (each rank's local elements placed by its shard map).
template <class T>
std::vector<float> gather_tensor(const TensorSpec& s, const T* local, Communicator* tp) {
  const int64_t n = s.numel();
  std::vector<float> mine(local, local + n);
  if (!tp || tp->size() == 1 || s.shard.replicated()) return mine;
  std::vector<float> parts(size_t(n) * tp->size()), whole(parts.size());
  tp->all_gather(mine.data(), parts.data(), size_t(n));
  for (int p = 0; p < tp->size(); ++p) {
    ShardMap map = s.shard;
    map.rank = p;
    for (int64_t j = 0; j < n; ++j) whole[size_t(map.global_index(j))] = parts[size_t(p) * n + j];
  }
  return whole;
}

}  // namespace

template <class T>
void save_weights(const std::string& path, const ParamBuffer<T>& params, const ModelConfig& model, Communicator* tp,
                  Communicator* pp, bool writer_group, const StageTensors& stage_tensors) {
  const int stages = pp ? pp->size() : 1, stage = pp ? pp->rank() : 0;
  STRATA_CHECK(stages == 1 || stage_tensors, "save_weights: {} pipeline stages but no list of their tensors", stages);
  constexpr int kTag = 31;
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.params());
  std::vector<std::vector<float>> mine;
  for (const auto& s : params.specs()) mine.push_back(gather_tensor(s, host.data() + s.offset, tp));
  if (!writer_group) return;
  // Every stage contributes the tensors it holds, but a tied tensor's copy (the first stage holds the original).
  if (stage != 0) {
    for (size_t i = 0; i < mine.size(); ++i)
      if (!params.specs()[i].tied_copy) pp->send(mine[i].data(), mine[i].size(), 0, kTag);
    return;
  }
  write_atomically(path, [&](const std::string& tmp) {
    auto file = h5::create_file(tmp);
    write_weights_header(file, model);
    auto write = [&](const TensorSpec& s, const std::vector<float>& whole) {
      std::vector<hsize_t> shape(s.global_shape.begin(), s.global_shape.end());
      h5::write_dataset<float>(file, s.name, shape, whole.data());
    };
    for (size_t i = 0; i < mine.size(); ++i) write(params.specs()[i], mine[i]);
    for (int from = 1; from < stages; ++from) {
      std::vector<float> whole;
      for (const TensorSpec& s : stage_tensors(from)) {  // global shapes and names, in send order
        if (s.tied_copy) continue;
        whole.resize(size_t(s.global_numel()));
        pp->recv(whole.data(), whole.size(), from, kTag);
        write(s, whole);
      }
    }
    STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  });
}

template <class T>
void load_weights(const std::string& path, ParamBuffer<T>& params, const ModelConfig& model) {
  auto file = h5::open_file(path);
  // Fields the file omits are not compared: files written by other tools may omit the config.
  const std::string mismatch = model_attrs_mismatch(file, "", model, path);
  STRATA_CHECK(mismatch.empty(), "{}: the weights do not fit the config: {}", path, mismatch);
  auto host = Kokkos::create_mirror_view(params.params());
  for (const auto& s : params.specs()) {
    STRATA_CHECK(h5::exists(file, s.name), "{}: tensor '{}' is missing", path, s.name);
    auto dims = h5::dataset_shape(file, s.name, path);
    std::vector<int64_t> shape(dims.begin(), dims.end());
    STRATA_CHECK(shape == s.global_shape, "{}: tensor '{}' has shape {}, expected {}", path, s.name, shape_text(shape),
                 shape_text(s.global_shape));
    auto values = h5::read_dataset<double>(file, s.name, path);
    for (int64_t i = 0; i < s.numel(); ++i) host(s.offset + i) = T(values[size_t(s.shard.global_index(i))]);
  }
  Kokkos::deep_copy(params.params(), host);
}

template void save_weights<float>(const std::string&, const ParamBuffer<float>&, const ModelConfig&, Communicator*,
                                  Communicator*, bool, const StageTensors&);
template void save_weights<double>(const std::string&, const ParamBuffer<double>&, const ModelConfig&, Communicator*,
                                   Communicator*, bool, const StageTensors&);
template void load_weights<float>(const std::string&, ParamBuffer<float>&, const ModelConfig&);
template void load_weights<double>(const std::string&, ParamBuffer<double>&, const ModelConfig&);

}  // namespace strata
