// Pruning masks in checkpoints (ckpt/checkpoint.hpp): the masked tensors' masks are stored beside params/adam_m/adam_v
// with their checksums, listed in the file, verified, reported by inspect, loaded back, and absent from files
// written without pruning (which still load into a run with masks, leaving them as they are).
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <vector>

#include "ckpt/checkpoint.hpp"
#include "ckpt/inspect.hpp"
#include "unit/ckpt/checkpoint_fixture.hpp"
#include "unit/data/temp_dir.hpp"

namespace strata::ckpt {
namespace {

using testing::bump_element;
using testing::tiny_model;

struct MaskedCheckpoint {
  std::vector<float> params, m, v, mask;
  RankTensors tensors;
  CheckpointMeta meta;
};

MaskedCheckpoint make(const std::vector<std::string>& masked) {
  MaskedCheckpoint c;
  ParamBuffer<float> buffer(gpt_layout(tiny_model()).specs);
  c.params.resize(buffer.size());
  c.m.resize(buffer.size());
  c.v.resize(buffer.size());
  c.mask.assign(buffer.size(), 1.0f);
  for (size_t i = 0; i < c.params.size(); ++i) {
    c.params[i] = 1e-3f * float(i % 101) - 0.05f;
    c.m[i] = 1e-4f * float(i % 13);
    c.v[i] = 1e-6f * float(i % 7 + 1);
  }
  for (const auto& s : buffer.specs())
    if (std::find(masked.begin(), masked.end(), s.name) != masked.end())
      for (int64_t j = 0; j < s.numel(); j += 3) {
        c.mask[size_t(s.offset + j)] = 0.0f;
        c.params[size_t(s.offset + j)] = 0.0f;
      }
  c.tensors.specs = buffer.specs();
  c.tensors.params = c.params.data();
  c.tensors.adam_m = c.m.data();
  c.tensors.adam_v = c.v.data();
  c.tensors.mask = c.mask.data();
  c.tensors.adam_end = int64_t(c.params.size());
  writer_flags(c.tensors, 0, 1, 0, false);
  c.meta.step = 3;
  c.meta.lr_schedule = "cosine";
  c.meta.model = tiny_model();
  c.meta.tensors = buffer.specs();
  c.meta.masked = masked;
  return c;
}

TEST(PruneMasks, RoundTripWithChecksumsAndInspect) {
  strata::testing::TempDir dir;
  const std::string path = dir.file("masked.h5");
  const std::vector<std::string> masked{"h.0.attn.c_attn.weight", "h.1.mlp.c_fc.weight"};
  MaskedCheckpoint c = make(masked);
  write_checkpoint(path, c.tensors, c.meta, MPI_COMM_SELF);
  EXPECT_EQ(verify_checkpoint(path, MPI_COMM_SELF), "");
  EXPECT_EQ(read_checkpoint_meta(path).masked, masked);

  std::vector<float> params(c.params.size()), m(c.params.size()), v(c.params.size()), mask(c.params.size(), 1.0f);
  RankTensors into = c.tensors;
  into.params = params.data();
  into.adam_m = m.data();
  into.adam_v = v.data();
  into.mask = mask.data();
  load_checkpoint(path, into);
  EXPECT_EQ(params, c.params);
  EXPECT_EQ(mask, c.mask);
  EXPECT_EQ(std::count(mask.begin(), mask.end(), 0.0f), std::count(c.mask.begin(), c.mask.end(), 0.0f));
  EXPECT_GT(std::count(mask.begin(), mask.end(), 0.0f), 0);

  const InspectReport report = inspect_checkpoint(path);
  int mask_datasets = 0;
  for (const auto& t : report.tensors) {
    if (t.group != "prune_mask") continue;
    ++mask_datasets;
    EXPECT_TRUE(t.ok) << t.dataset;
  }
  EXPECT_EQ(mask_datasets, 2);

  bump_element(path, "prune_mask/h.1.mlp.c_fc.weight", 4);
  const std::string problem = verify_checkpoint(path, MPI_COMM_SELF);
  EXPECT_NE(problem.find("checksum mismatch in tensor 'prune_mask/h.1.mlp.c_fc.weight'"), std::string::npos) << problem;
}

TEST(PruneMasks, FileWithoutMasksLeavesTheRunsMasksAlone) {
  strata::testing::TempDir dir;
  const std::string path = dir.file("plain.h5");
  MaskedCheckpoint c = make({});
  write_checkpoint(path, c.tensors, c.meta, MPI_COMM_SELF);
  EXPECT_EQ(verify_checkpoint(path, MPI_COMM_SELF), "");
  EXPECT_TRUE(read_checkpoint_meta(path).masked.empty());
  std::vector<float> mask(c.params.size(), 0.5f);
  RankTensors into = c.tensors;
  into.mask = mask.data();
  load_checkpoint(path, into);
  EXPECT_TRUE(std::all_of(mask.begin(), mask.end(), [](float x) { return x == 0.5f; }));
}

}  // namespace
}  // namespace strata::ckpt
