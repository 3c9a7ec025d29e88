#include "ckpt/inspect.hpp"

#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <filesystem>

#include "ckpt/checkpoint.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "nn/gpt_layout.hpp"
#include "support/expect_error.hpp"
#include "unit/data/temp_dir.hpp"

namespace strata::ckpt {
namespace {
namespace fs = std::filesystem;
using strata::testing::expect_error;
using strata::testing::TempDir;

ModelConfig tiny_model() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.d_model = 16;
  m.vocab_size = 37;
  m.seq_len = 8;
  return m;
}

// Writes a one-rank checkpoint of tiny_model() with initialized parameters (every element distinct) and moments.
// Returns the parameter buffer's host copy.
std::vector<float> write_test_checkpoint(const std::string& path, const ModelConfig& model) {
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
  writer_flags(t, 0, 1, 0, false, -1);
  CheckpointMeta meta;
  meta.step = 7;
  meta.consumed_samples = 56;
  meta.adam_steps = 7;
  meta.train_seed = 42;
  meta.data_seed = 1234;
  meta.lr_schedule = "cosine";
  meta.lr = 2.5e-4;
  meta.config_toml = "[model]\nn_layer = 2\n";
  meta.model = model;
  write_checkpoint(path, t, meta, MPI_COMM_SELF);
  return params;
}

// Adds 1 to element `index` (flat) of `dataset`, in place.
void bump_element(const std::string& path, const std::string& dataset, hsize_t index) {
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

TEST(InspectCheckpoint, ListsEveryTensorWithItsShapeAndVerifiedChecksums) {
  TempDir dir;
  const std::string path = dir.file("step-00000007.h5");
  const ModelConfig model = tiny_model();
  const std::vector<float> params = write_test_checkpoint(path, model);
  const auto all = global_tensors(model);

  const InspectReport r = inspect_checkpoint(path);
  EXPECT_EQ(r.path, path);
  EXPECT_EQ(r.format_version, kCheckpointVersion);
  EXPECT_EQ(r.meta.step, 7);
  EXPECT_EQ(r.meta.consumed_samples, 56);
  EXPECT_EQ(r.meta.model.vocab_size, 37);
  EXPECT_EQ(r.meta.config_toml, "[model]\nn_layer = 2\n");
  EXPECT_TRUE(r.verified);
  ASSERT_EQ(r.tensors.size(), 3 * all.size());
  int64_t bytes = 0;
  for (size_t g = 0; g < 3; ++g)
    for (size_t i = 0; i < all.size(); ++i) {
      const TensorReport& t = r.tensors[g * all.size() + i];
      SCOPED_TRACE(t.dataset);
      EXPECT_EQ(t.group, checkpoint_groups()[g]);
      EXPECT_EQ(t.name, all[i].name);
      EXPECT_EQ(t.dataset, t.group + "/" + t.name);
      EXPECT_EQ(t.shape, all[i].global_shape);
      EXPECT_EQ(t.dtype, "float32");
      EXPECT_EQ(t.bytes, all[i].numel() * 4);
      EXPECT_EQ(t.stored_checksum.size(), 16u);
      EXPECT_EQ(t.computed_checksum, t.stored_checksum);
      EXPECT_TRUE(t.verified);
      EXPECT_TRUE(t.ok);
      bytes += t.bytes;
    }
  EXPECT_EQ(r.total_bytes, bytes);
  EXPECT_EQ(r.mismatches, 0);
  EXPECT_EQ(r.first_mismatch, "");
  // The checksum is the documented function of the values: recompute one from the buffer that was written.
  const auto wte = std::find_if(r.tensors.begin(), r.tensors.end(), [](auto& t) { return t.dataset == "params/wte"; });
  ASSERT_NE(wte, r.tensors.end());
  EXPECT_EQ(wte->stored_checksum, tensor_checksum(params.data(), all[0].numel()));  // wte is first in the buffer

  const std::string text = format_inspect_report(r);
  for (const std::string& fragment :
       {"file:             " + path, std::string("step:             7"), std::string("consumed samples: 56"),
        std::string("layout:           dp 1 x tp 1 x pp 1\n"), std::string("n_layer 2, n_head 2, d_model 16"),
        std::string("params/h.1.attn.c_attn.weight"), std::string("[48, 16]"), "total: " + std::to_string(r.tensors.size()) + " tensors",
        fmt::format("\nchecksums: all {} OK\n", r.tensors.size())})
    EXPECT_NE(text.find(fragment), std::string::npos) << fragment << "\nnot in:\n" << text;
  EXPECT_EQ(text.find("MISMATCH"), std::string::npos);

  // --no-verify: the same list, nothing recomputed.
  const InspectReport quick = inspect_checkpoint(path, /*verify=*/false);
  ASSERT_EQ(quick.tensors.size(), r.tensors.size());
  for (size_t k = 0; k < quick.tensors.size(); ++k) {
    EXPECT_EQ(quick.tensors[k].shape, r.tensors[k].shape);
    EXPECT_EQ(quick.tensors[k].stored_checksum, r.tensors[k].stored_checksum);
    EXPECT_FALSE(quick.tensors[k].verified);
    EXPECT_EQ(quick.tensors[k].computed_checksum, "");
  }
  EXPECT_NE(format_inspect_report(quick).find("checksums: not verified"), std::string::npos);

  // The layout line of a ZeRO-1 run.
  {
    auto file = h5::open_file(path, /*writable=*/true);
    h5::write_attr(file, "layout.dp", int64_t(4));
    h5::write_attr(file, "layout.zero1", int64_t(1));
  }
  EXPECT_NE(format_inspect_report(inspect_checkpoint(path, false)).find("layout:           dp 4 x tp 1 x pp 1 (+ZeRO-1)\n"),
            std::string::npos);
}

TEST(InspectCheckpoint, OneChangedElementIsAMismatchNamingTheTensor) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  write_test_checkpoint(path, tiny_model());
  bump_element(path, "adam_v/h.1.mlp.c_fc.weight", 100);

  const InspectReport r = inspect_checkpoint(path);
  EXPECT_EQ(r.mismatches, 1);
  EXPECT_EQ(r.first_mismatch, "adam_v/h.1.mlp.c_fc.weight");
  for (const auto& t : r.tensors) EXPECT_EQ(t.ok, t.dataset != "adam_v/h.1.mlp.c_fc.weight") << t.dataset;
  const std::string text = format_inspect_report(r);
  EXPECT_NE(text.find("\nchecksums: 1 mismatches (first: adam_v/h.1.mlp.c_fc.weight)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("MISMATCH (computed "), std::string::npos) << text;

  // A second one, earlier in the file, becomes the first.
  bump_element(path, "params/wpe", 0);
  const InspectReport r2 = inspect_checkpoint(path);
  EXPECT_EQ(r2.mismatches, 2);
  EXPECT_EQ(r2.first_mismatch, "params/wpe");
  // Not verifying reads no data and sees nothing.
  EXPECT_EQ(inspect_checkpoint(path, false).mismatches, 0);
}

TEST(InspectCheckpoint, TruncatedFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  write_test_checkpoint(path, tiny_model());
  for (double keep : {0.5, 0.98}) {
    SCOPED_TRACE(keep);
    const std::string cut = dir.file("cut.h5");
    fs::copy_file(path, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, uintmax_t(double(fs::file_size(path)) * keep));
    expect_error([&] { inspect_checkpoint(cut); }, {cut});
    expect_error([&] { inspect_checkpoint(cut, false); }, {cut});
  }
  expect_error([&] { inspect_checkpoint(dir.file("absent.h5")); }, {dir.file("absent.h5"), "no such file"});
  const std::string text = dir.write("text.h5", "not hdf5 at all");
  expect_error([&] { inspect_checkpoint(text); }, {text});
}

TEST(InspectCheckpoint, MissingTensorOrOtherFileIsAnErrorNamingTheTensor) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  write_test_checkpoint(path, tiny_model());
  {
    auto file = h5::open_file(path, true);
    STRATA_H5(H5Ldelete(file, "adam_m/ln_f.bias", H5P_DEFAULT));
  }
  expect_error([&] { inspect_checkpoint(path); }, {path, "'adam_m/ln_f.bias'", "missing"});
  expect_error([&] { inspect_checkpoint(path, false); }, {path, "'adam_m/ln_f.bias'", "missing"});

  // An HDF5 file that is not a checkpoint (a weights file has no 'format' = strata-checkpoint).
  const std::string other = dir.file("weights.h5");
  {
    auto file = h5::create_file(other);
    h5::write_attr(file, "format", std::string("strata-weights"));
  }
  expect_error([&] { inspect_checkpoint(other); }, {other, "not a Strata checkpoint"});
}

}  // namespace
}  // namespace strata::ckpt
