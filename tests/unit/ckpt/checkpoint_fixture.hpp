#pragma once
// A small one-rank checkpoint for the checkpoint tools' tests (inspect, export), and a way to damage it.
#include <Kokkos_Core.hpp>
#include <string>
#include <vector>

#include "ckpt/checkpoint.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "models/gpt_layout.hpp"

namespace strata::ckpt::testing {

// 2 layers, 2 heads, d_model 16, seq 8; the vocabulary (38) splits over 2 tensor-parallel ranks.
inline ModelConfig tiny_model() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.d_model = 16;
  m.vocab_size = 38;
  m.seq_len = 8;
  return m;
}

// Writes a one-rank checkpoint of `model` at `step` (8 samples per step consumed; train seed 42, data seed 1234,
// cosine schedule at lr 2.5e-4) with initialized parameters, every element distinct, and moments. Returns the
// parameter buffer's host copy.
inline std::vector<float> write_test_checkpoint(const std::string& path, const ModelConfig& model, int64_t step) {
  ParamBuffer<float> buffer(gpt_layout(model).specs);
  buffer.initialize(5);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffer.params());
  std::vector<float> params(host.data(), host.data() + buffer.size()), m(params.size()), v(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    params[i] += 1e-3f * float(i % 97);  // biases and LayerNorms too: no two tensors alike
    m[i] = 1e-4f * float(i % 13) - 5e-4f;
    v[i] = 1e-6f * float(i % 7 + 1);
  }
  RankTensors t;
  t.specs = buffer.specs();
  t.params = params.data();
  t.adam_m = m.data();
  t.adam_v = v.data();
  t.adam_begin = 0;
  t.adam_end = int64_t(params.size());
  writer_flags(t, 0, 1, 0, false);
  CheckpointMeta meta;
  meta.step = step;
  meta.consumed_samples = 8 * step;
  meta.adam_steps = step;
  meta.train_seed = 42;
  meta.data_seed = 1234;
  meta.lr_schedule = "cosine";
  meta.lr = 2.5e-4;
  meta.config_toml = "[model]\nn_layer = 2\n";
  meta.model = model;
  meta.tensors = buffer.specs();
  write_checkpoint(path, t, meta, MPI_COMM_SELF);
  return params;
}

// Adds 1 to element `index` (flat) of `dataset`, in place.
inline void bump_element(const std::string& path, const std::string& dataset, hsize_t index) {
  auto file = h5::open_file(path, /*writable=*/true);
  h5::Handle ds(STRATA_H5(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT)), H5Dclose);
  h5::Handle space(STRATA_H5(H5Dget_space(ds)), H5Sclose);
  const int rank = STRATA_H5(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), coords(static_cast<size_t>(rank));
  STRATA_H5(H5Sget_simple_extent_dims(space, dims.data(), nullptr));
  for (int d = rank - 1; d >= 0; --d) {
    coords[size_t(d)] = index % dims[size_t(d)];
    index /= dims[size_t(d)];
  }
  STRATA_H5(H5Sselect_elements(space, H5S_SELECT_SET, 1, coords.data()));
  const hsize_t one = 1;
  h5::Handle mem(STRATA_H5(H5Screate_simple(1, &one, nullptr)), H5Sclose);
  float value = 0;
  STRATA_H5(H5Dread(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &value));
  value += 1.0f;
  STRATA_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &value));
}

}  // namespace strata::ckpt::testing
