#include "ckpt/inspect.hpp"

#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <filesystem>

#include "ckpt/checkpoint.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "models/gpt_layout.hpp"
#include "support/expect_error.hpp"
#include "unit/ckpt/checkpoint_fixture.hpp"
#include "unit/data/temp_dir.hpp"

namespace strata::ckpt {
namespace {
namespace fs = std::filesystem;
using strata::testing::expect_error;
using strata::testing::TempDir;
using namespace strata::ckpt::testing;

TEST(InspectCheckpoint, ListsEveryTensorWithItsShapeAndVerifiedChecksums) {
  TempDir dir;
  const std::string path = dir.file("step-00000007.h5");
  const ModelConfig model = tiny_model();
  const std::vector<float> params = write_test_checkpoint(path, model, 7);
  const auto all = gpt_layout(model).specs;

  const InspectReport r = inspect_checkpoint(path);
  EXPECT_EQ(r.path, path);
  EXPECT_EQ(r.format_version, kCheckpointVersion);
  EXPECT_EQ(r.meta.step, 7);
  EXPECT_EQ(r.meta.consumed_samples, 56);
  EXPECT_EQ(r.meta.model.vocab_size, 38);
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
        std::string("params/h.1.attn.c_attn.weight"), std::string("[48, 16]"),
        "total: " + std::to_string(r.tensors.size()) + " tensors",
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
  EXPECT_NE(
      format_inspect_report(inspect_checkpoint(path, false)).find("layout:           dp 4 x tp 1 x pp 1 (+ZeRO-1)\n"),
      std::string::npos);
}

TEST(InspectCheckpoint, OneChangedElementIsAMismatchNamingTheTensor) {
  TempDir dir;
  const std::string path = dir.file("ckpt.h5");
  write_test_checkpoint(path, tiny_model(), 7);
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
  write_test_checkpoint(path, tiny_model(), 7);
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
  write_test_checkpoint(path, tiny_model(), 7);
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
