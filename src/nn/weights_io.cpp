#include "nn/weights_io.hpp"

#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace strata {
namespace {

std::vector<std::pair<const char*, int>> model_fields(const ModelConfig& m) {
  return {{"n_layer", m.n_layer}, {"n_head", m.n_head}, {"d_model", m.d_model}, {"vocab_size", m.vocab_size},
          {"seq_len", m.seq_len}};
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

template <class T>
void save_weights(const std::string& path, const ParamBuffer<T>& params, const ModelConfig& model) {
  const std::string tmp = path + ".tmp";
  {
    auto file = h5::create_file(tmp);
    h5::write_attr(file, "format", std::string("strata-weights"));
    h5::write_attr(file, "format_version", int64_t(1));
    for (auto [name, value] : model_fields(model)) h5::write_attr(file, name, int64_t(value));
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.params());
    std::vector<float> buf;
    for (const auto& s : params.specs()) {
      buf.assign(host.data() + s.offset, host.data() + s.offset + s.numel());
      std::vector<hsize_t> shape(s.shape.begin(), s.shape.end());
      h5::write_dataset<float>(file, s.name, shape, buf.data());
    }
    STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  STRATA_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
}

template <class T>
void load_weights(const std::string& path, ParamBuffer<T>& params, const ModelConfig& model) {
  auto file = h5::open_file(path);
  for (auto [name, value] : model_fields(model)) {
    if (!h5::has_attr(file, name)) continue;  // files written by other tools may omit the config
    const int64_t stored = h5::read_attr_int(file, name, path);
    STRATA_CHECK(stored == value, "{}: weights were written for model.{} = {}, the config says {}", path, name, stored,
                 value);
  }
  auto host = Kokkos::create_mirror_view(params.params());
  for (const auto& s : params.specs()) {
    STRATA_CHECK(h5::exists(file, s.name), "{}: tensor '{}' is missing", path, s.name);
    auto dims = h5::dataset_shape(file, s.name, path);
    std::vector<int64_t> shape(dims.begin(), dims.end());
    STRATA_CHECK(shape == s.shape, "{}: tensor '{}' has shape {}, expected {}", path, s.name, shape_text(shape),
                 shape_text(s.shape));
    auto values = h5::read_dataset<double>(file, s.name, path);
    for (int64_t i = 0; i < s.numel(); ++i) host(s.offset + i) = T(values[i]);
  }
  Kokkos::deep_copy(params.params(), host);
}

template void save_weights<float>(const std::string&, const ParamBuffer<float>&, const ModelConfig&);
template void save_weights<double>(const std::string&, const ParamBuffer<double>&, const ModelConfig&);
template void load_weights<float>(const std::string&, ParamBuffer<float>&, const ModelConfig&);
template void load_weights<double>(const std::string&, ParamBuffer<double>&, const ModelConfig&);

}  // namespace strata
