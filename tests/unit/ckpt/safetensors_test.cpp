#include "ckpt/safetensors_export.hpp"

#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "nn/gpt_layout.hpp"
#include "nn/weights_io.hpp"
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
  m.vocab_size = 38;  // even: the weights load on 2 tensor-parallel ranks
  m.seq_len = 8;
  return m;
}

// A one-rank checkpoint of `model` at step 9: initialized parameters with every element distinct, and moments.
void write_test_checkpoint(const std::string& path, const ModelConfig& model) {
  ParamBuffer<float> buffer(gpt_layout(model).specs);
  buffer.initialize(11);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffer.params());
  std::vector<float> params(host.data(), host.data() + buffer.size()), m(params.size()), v(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    params[i] += 1e-3f * float(i % 89);
    m[i] = 1e-4f * float(i % 13);
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
  meta.step = 9;
  meta.lr_schedule = "cosine";
  meta.lr = 1e-3;
  meta.model = model;
  write_checkpoint(path, t, meta, MPI_COMM_SELF);
}

// Adds 1 to element 0 of `dataset`, in place.
void bump_first_element(const std::string& path, const std::string& dataset) {
  auto file = h5::open_file(path, /*writable=*/true);
  h5::Handle ds(STRATA_H5(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT)), H5Dclose);
  h5::Handle space(STRATA_H5(H5Dget_space(ds)), H5Sclose);
  const int rank = STRATA_H5(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> start(static_cast<size_t>(rank), 0), count(static_cast<size_t>(rank), 1);
  STRATA_H5(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
  const hsize_t one = 1;
  h5::Handle mem(STRATA_H5(H5Screate_simple(1, &one, nullptr)), H5Sclose);
  float value = 0;
  STRATA_H5(H5Dread(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &value));
  value += 1.0f;
  STRATA_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &value));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(SafetensorsExport, ParsesAndHoldsEveryParameterTensorBitForBit) {
  TempDir dir;
  const ModelConfig model = tiny_model();
  const std::string ckpt = dir.file("step-00000009.h5"), out = dir.file("model.safetensors");
  write_test_checkpoint(ckpt, model);
  const ExportResult r = export_checkpoint(ckpt, out, "safetensors");
  const auto all = global_tensors(model);
  EXPECT_EQ(r.tensors, int64_t(all.size()));
  EXPECT_EQ(r.step, 9);
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  const std::string bytes = read_bytes(out);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(bytes[size_t(i)]);  // little-endian
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data not 8-byte aligned";
  const std::string header_text = bytes.substr(8, n);
  EXPECT_EQ(header_text.front(), '{');
  EXPECT_EQ(header_text.find_last_not_of(' '), header_text.rfind('}'));  // padded with spaces only
  const auto header = nlohmann::json::parse(header_text);
  const std::string data = bytes.substr(8 + n);

  const auto& meta = header.at("__metadata__");
  for (const auto& [key, value] : meta.items()) EXPECT_TRUE(value.is_string()) << key;
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(meta.at("step"), "9");
  EXPECT_EQ(meta.at("n_layer"), "2");
  EXPECT_EQ(meta.at("n_head"), "2");
  EXPECT_EQ(meta.at("d_model"), "16");
  EXPECT_EQ(meta.at("vocab_size"), "38");
  EXPECT_EQ(meta.at("seq_len"), "8");

  std::vector<std::string> names;
  for (const auto& s : all) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(header.size(), names.size() + 1);
  auto file = h5::open_file(ckpt);
  uint64_t expected_begin = 0;
  for (const auto& name : names) {  // sorted by name, back to back
    SCOPED_TRACE(name);
    ASSERT_TRUE(header.contains(name));
    const auto& e = header.at(name);
    EXPECT_EQ(e.at("dtype"), "F32");
    const auto spec = std::find_if(all.begin(), all.end(), [&](const TensorSpec& s) { return s.name == name; });
    EXPECT_EQ(e.at("shape").get<std::vector<int64_t>>(), spec->global_shape);
    const auto offsets = e.at("data_offsets").get<std::vector<uint64_t>>();
    ASSERT_EQ(offsets.size(), 2u);
    EXPECT_EQ(offsets[0], expected_begin);
    EXPECT_EQ(offsets[0] % 4, 0u);
    ASSERT_EQ(offsets[1] - offsets[0], uint64_t(spec->numel()) * 4);
    ASSERT_LE(offsets[1], data.size());
    const auto stored = h5::read_dataset<float>(file, "params/" + name, ckpt);
    EXPECT_EQ(std::memcmp(data.data() + offsets[0], stored.data(), stored.size() * 4), 0);
    expected_begin = offsets[1];
  }
  EXPECT_EQ(expected_begin, data.size());
  EXPECT_EQ(int64_t(data.size()), r.bytes);
}

TEST(SafetensorsExport, CorruptCheckpointRefusesToExport) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt.h5");
  write_test_checkpoint(ckpt, tiny_model());
  bump_first_element(ckpt, "params/h.1.ln_2.bias");
  for (const std::string format : {"safetensors", "hdf5"}) {
    SCOPED_TRACE(format);
    const std::string out = dir.file("out." + format);
    expect_error([&] { export_checkpoint(ckpt, out, format); }, {ckpt, "'params/h.1.ln_2.bias'", "checksum"});
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".tmp"));
  }
  // A truncated checkpoint: an error naming it, nothing written.
  const std::string cut = dir.file("cut.h5"), out = dir.file("cut.safetensors");
  fs::copy_file(ckpt, cut);
  fs::resize_file(cut, fs::file_size(ckpt) / 2);
  expect_error([&] { export_checkpoint(cut, out, "safetensors"); }, {cut});
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(SafetensorsExport, OnlyTheExportedTensorsAreChecked) {
  // The optimizer moments are not exported: damage there does not stop a weights export.
  TempDir dir;
  const std::string ckpt = dir.file("ckpt.h5"), out = dir.file("w.safetensors");
  write_test_checkpoint(ckpt, tiny_model());
  bump_first_element(ckpt, "adam_m/wte");
  EXPECT_EQ(export_checkpoint(ckpt, out, "safetensors").tensors, int64_t(global_tensors(tiny_model()).size()));
}

TEST(WeightsExport, Hdf5ExportIsAWeightsFileThatLoads) {
  TempDir dir;
  const ModelConfig model = tiny_model();
  const std::string ckpt = dir.file("ckpt.h5"), out = dir.file("weights.h5");
  write_test_checkpoint(ckpt, model);
  export_checkpoint(ckpt, out, "hdf5");
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  {
    auto file = h5::open_file(out), source = h5::open_file(ckpt);
    EXPECT_EQ(h5::read_attr_string(file, "format", out), "strata-weights");
    EXPECT_EQ(h5::read_attr_int(file, "format_version", out), 1);
    EXPECT_EQ(h5::read_attr_int(file, "n_layer", out), 2);
    EXPECT_EQ(h5::read_attr_int(file, "n_head", out), 2);
    EXPECT_EQ(h5::read_attr_int(file, "d_model", out), 16);
    EXPECT_EQ(h5::read_attr_int(file, "vocab_size", out), 38);
    EXPECT_EQ(h5::read_attr_int(file, "seq_len", out), 8);
    for (const auto& s : global_tensors(model))
      EXPECT_EQ(h5::read_dataset<float>(file, s.name, out), h5::read_dataset<float>(source, "params/" + s.name, ckpt))
          << s.name;
  }
  // Strata's own weights loader reads it (as `strata eval --weights` does): every value on one rank, and a
  // tensor-parallel split loads too.
  {
    ParamBuffer<float> buffer(gpt_layout(model).specs);
    load_weights(out, buffer, model);
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buffer.params());
    auto source = h5::open_file(ckpt);
    for (const auto& s : buffer.specs()) {
      const auto stored = h5::read_dataset<float>(source, "params/" + s.name, ckpt);
      EXPECT_EQ(std::vector<float>(host.data() + s.offset, host.data() + s.offset + s.numel()), stored) << s.name;
    }
  }
  ParamBuffer<float> split(gpt_layout(model, 1, 2).specs);
  load_weights(out, split, model);
}

TEST(Export, UnknownFormatListsTheChoices) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt.h5");
  write_test_checkpoint(ckpt, tiny_model());
  expect_error([&] { export_checkpoint(ckpt, dir.file("x.onnx"), "onnx"); }, {"'onnx'", "safetensors, hdf5"});
  expect_error([&] { export_checkpoint(ckpt, ckpt, "hdf5"); }, {ckpt, "would replace the checkpoint"});
  EXPECT_TRUE(fs::exists(ckpt));
}

}  // namespace
}  // namespace strata::ckpt
