#include "train/model_source.hpp"

#include <filesystem>

#include "ckpt/checkpoint_dir.hpp"
#include "ckpt/safetensors_export.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/model_attrs.hpp"
#include "train/training_data.hpp"

namespace strata {
namespace {

bool is_weights_file(const std::string& path) {
  if (std::filesystem::is_directory(path) || H5Fis_hdf5(path.c_str()) <= 0) return false;
  auto file = h5::open_file(path);
  return h5::has_attr(file, "format") && h5::read_attr_string(file, "format", path) == "strata-weights";
}

}  // namespace

std::string weights_file_of(const std::string& path, const std::string& export_path, MPI_Comm world) {
  STRATA_CHECK(std::filesystem::exists(path), "'{}' does not exist: expected a weights file or a checkpoint", path);
  if (is_weights_file(path)) return path;
  std::string checkpoint = path;
  if (std::filesystem::is_directory(path)) {
    checkpoint = ckpt::latest_checkpoint(path);
    STRATA_CHECK(!checkpoint.empty(), "'{}': a directory without a 'latest' checkpoint", path);
  }
  int rank = 0;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  if (rank == 0) ckpt::export_checkpoint(checkpoint, export_path, "hdf5");
  STRATA_MPI(MPI_Barrier(world));
  return export_path;
}

ModelConfig stored_model_for(const std::string& weights, const Config& config, const std::string& what) {
  ModelConfig m;
  {
    auto file = h5::open_file(weights);
    m = read_model_attrs(file, "", what);
  }
  STRATA_CHECK(m.kind == config.model.kind, "{} is a {}, the config's model.kind is {}", what, m.kind,
               config.model.kind);
  if (m.kind != "gpt") return resolve_model(m, config.data.path, what);
  STRATA_CHECK(m.vocab_size == config.model.vocab_size && m.seq_len == config.model.seq_len,
               "{} has vocab_size {} and seq_len {}, the config {} and {}", what, m.vocab_size, m.seq_len,
               config.model.vocab_size, config.model.seq_len);
  return m;
}

}  // namespace strata
