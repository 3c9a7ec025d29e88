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
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "models/gpt_layout.hpp"
#include "nn/weights_io.hpp"
#include "support/expect_error.hpp"
#include "unit/ckpt/checkpoint_fixture.hpp"
#include "unit/data/temp_dir.hpp"

namespace strata::ckpt {
namespace {
namespace fs = std::filesystem;
using strata::testing::expect_error;
using strata::testing::TempDir;
using namespace strata::ckpt::testing;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(SafetensorsExport, ParsesAndHoldsEveryParameterTensorBitForBit) {
  TempDir dir;
  const ModelConfig model = tiny_model();
  const std::string ckpt = dir.file("step-00000009.h5"), out = dir.file("model.safetensors");
  write_test_checkpoint(ckpt, model, 9);
  const ExportResult r = export_checkpoint(ckpt, out, "safetensors");
  const auto all = gpt_layout(model).specs;
  EXPECT_EQ(r.tensors, int64_t(all.size()));
  EXPECT_EQ(r.step, 9);
  EXPECT_FALSE(fs::exists(strata::temporary_path(out)));

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
  write_test_checkpoint(ckpt, tiny_model(), 9);
  bump_element(ckpt, "params/h.1.ln_2.bias", 0);
  for (const std::string format : {"safetensors", "hdf5"}) {
    SCOPED_TRACE(format);
    const std::string out = dir.file("out." + format);
    expect_error([&] { export_checkpoint(ckpt, out, format); }, {ckpt, "'params/h.1.ln_2.bias'", "checksum"});
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(strata::temporary_path(out)));
  }
  // A truncated checkpoint: an error naming it, nothing written.
  const std::string cut = dir.file("cut.h5"), out = dir.file("cut.safetensors");
  fs::copy_file(ckpt, cut);
  fs::resize_file(cut, fs::file_size(ckpt) / 2);
  expect_error([&] { export_checkpoint(cut, out, "safetensors"); }, {cut});
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(strata::temporary_path(out)));
}

TEST(SafetensorsExport, OnlyTheExportedTensorsAreChecked) {
  // The optimizer moments are not exported: damage there does not stop a weights export.
  TempDir dir;
  const std::string ckpt = dir.file("ckpt.h5"), out = dir.file("w.safetensors");
  write_test_checkpoint(ckpt, tiny_model(), 9);
  bump_element(ckpt, "adam_m/wte", 0);
  EXPECT_EQ(export_checkpoint(ckpt, out, "safetensors").tensors, int64_t(gpt_layout(tiny_model()).specs.size()));
}

TEST(WeightsExport, Hdf5ExportIsAWeightsFileThatLoads) {
  TempDir dir;
  const ModelConfig model = tiny_model();
  const std::string ckpt = dir.file("ckpt.h5"), out = dir.file("weights.h5");
  write_test_checkpoint(ckpt, model, 9);
  export_checkpoint(ckpt, out, "hdf5");
  EXPECT_FALSE(fs::exists(strata::temporary_path(out)));
  {
    auto file = h5::open_file(out), source = h5::open_file(ckpt);
    EXPECT_EQ(h5::read_attr_string(file, "format", out), "strata-weights");
    EXPECT_EQ(h5::read_attr_int(file, "format_version", out), 1);
    EXPECT_EQ(h5::read_attr_int(file, "n_layer", out), 2);
    EXPECT_EQ(h5::read_attr_int(file, "n_head", out), 2);
    EXPECT_EQ(h5::read_attr_int(file, "d_model", out), 16);
    EXPECT_EQ(h5::read_attr_int(file, "vocab_size", out), 38);
    EXPECT_EQ(h5::read_attr_int(file, "seq_len", out), 8);
    for (const auto& s : gpt_layout(model).specs)
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
  write_test_checkpoint(ckpt, tiny_model(), 9);
  expect_error([&] { export_checkpoint(ckpt, dir.file("x.onnx"), "onnx"); }, {"'onnx'", "safetensors, hdf5"});
  expect_error([&] { export_checkpoint(ckpt, ckpt, "hdf5"); }, {ckpt, "would replace the checkpoint"});
  EXPECT_TRUE(fs::exists(ckpt));
}

}  // namespace
}  // namespace strata::ckpt
