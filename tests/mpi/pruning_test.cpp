// Magnitude pruning's selection (train/pruning.hpp) on real groups: a model of three weight matrices (one split by
// rows, one by columns over every rank of the group, one replicated) plus a bias, each rank holding its shard. The
// masks every rank ends with must be its part of the masks a plain sort of the whole tensors gives: the k smallest
// |w| of every selected element (global scope) or of each tensor (layer scope), k = round(s * n), at every group
// size, and they must only lose entries as the schedule goes on.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "core/rng.hpp"
#include "parallel/data_parallel.hpp"
#include "train/pruning.hpp"

namespace strata {
namespace {

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}
int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// The model's tensors split over `ranks` (rank `rank`'s specs) or whole (ranks = 1).
std::vector<TensorSpec> model_specs(int rank, int ranks) {
  return {tensor_spec("a.weight", {8, 6}, InitKind::Normal, 1.0, 0, rank, ranks),
          tensor_spec("a.bias", {8}, InitKind::Zeros, 0, 0, rank, ranks),
          tensor_spec("b.weight", {5, 16}, InitKind::Normal, 1.0, 1, rank, ranks),
          tensor_spec("c.weight", {7, 3}, InitKind::Normal, 1.0, -1, rank, ranks)};
}

// Global values of tensor `name`: distinct magnitudes from a hash of (name, index), a few exact ties and zeros.
float value_of(const std::string& name, int64_t i) {
  const uint64_t h = rng::mix64(std::hash<std::string>{}(name) ^ uint64_t(i) * 0x9E3779B97F4A7C15ull);
  float v = float(double(h >> 11) / double(1ull << 53)) * 2.0f - 1.0f;
  if (i % 17 == 3) v = 0.25f;   // ties across tensors
  if (i % 23 == 5) v = -0.25f;  // the same magnitude, negative
  return v;
}

// The reference: per element of each selected tensor, whether a sort of the selected whole tensors prunes it.
std::vector<std::vector<char>> reference_pruned(const std::vector<TensorSpec>& whole, double s, bool global) {
  std::vector<std::vector<char>> pruned(whole.size());
  auto prune_group = [&](const std::vector<size_t>& members) {
    std::vector<float> mags;
    for (size_t t : members)
      for (int64_t i = 0; i < whole[t].global_numel(); ++i) mags.push_back(std::fabs(value_of(whole[t].name, i)));
    const auto k = std::llround(s * double(mags.size()));
    if (k == 0) return;
    std::sort(mags.begin(), mags.end());
    const float threshold = mags[size_t(k - 1)];  // every element at or below the k-th smallest
    for (size_t t : members)
      for (int64_t i = 0; i < whole[t].global_numel(); ++i)
        pruned[t][size_t(i)] = std::fabs(value_of(whole[t].name, i)) <= threshold;
  };
  std::vector<size_t> selected;
  for (size_t t = 0; t < whole.size(); ++t) {
    pruned[t].assign(size_t(whole[t].global_numel()), 0);
    if (whole[t].decay) selected.push_back(t);
  }
  if (global) {
    prune_group(selected);
  } else {
    for (size_t t : selected) prune_group({t});
  }
  return pruned;
}

void check_group(int g, const std::string& scope) {
  MPI_Comm split;
  ASSERT_EQ(MPI_Comm_split(MPI_COMM_WORLD, world_rank() / g, world_rank(), &split), MPI_SUCCESS);
  auto comm = MpiCommunicator::adopt(split);
  const int rank = comm->rank();
  ParamBuffer<float> params(model_specs(rank, g));
  const auto whole = model_specs(0, 1);
  auto host = Kokkos::create_mirror_view(params.params());
  for (const auto& s : params.specs())
    for (int64_t j = 0; j < s.numel(); ++j) host(size_t(s.offset + j)) = value_of(s.name, s.shard.global_index(j));
  Kokkos::deep_copy(params.params(), host);
  PruneConfig config;
  config.sparsity = 0.6;
  config.initial_sparsity = 0.1;
  config.start_step = 2;
  config.end_step = 8;
  config.every = 3;
  config.scope = scope;
  Pruner pruner(config, 10, params, whole, norm_flags(params.specs(), rank), {comm.get()});
  ASSERT_TRUE(pruner.on());
  EXPECT_EQ(pruner.masked_tensors(), (std::vector<std::string>{"a.weight", "b.weight", "c.weight"}));
  std::vector<float> previous_mask;
  int updates = 0;
  for (int64_t done = 0; done <= 10; ++done) {
    if (!pruner.maybe_update(done)) continue;
    ++updates;
    SCOPED_TRACE("group of " + std::to_string(g) + ", " + scope + ", after step " + std::to_string(done));
    const auto expected = reference_pruned(whole, pruner.schedule().sparsity_at(done), scope == "global");
    auto mask = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), pruner.mask());
    auto w = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.params());
    int64_t wrong = 0;
    for (size_t t = 0; t < params.specs().size(); ++t) {
      const auto& s = params.specs()[t];
      for (int64_t j = 0; j < s.numel(); ++j) {
        const size_t b = size_t(s.offset + j);
        const bool pruned = expected[t][size_t(s.shard.global_index(j))];
        wrong += (mask(b) == 0.0f) != pruned;
        wrong += pruned ? w(b) != 0.0f : w(b) != value_of(s.name, s.shard.global_index(j));
        if (!previous_mask.empty()) wrong += previous_mask[b] == 0.0f && mask(b) != 0.0f;  // masks only lose entries
      }
    }
    EXPECT_EQ(wrong, 0);
    previous_mask.assign(mask.data(), mask.data() + mask.extent(0));
    const auto report = pruner.report(done);
    int64_t pruned_total = 0, elements = 0;
    for (size_t t = 0; t < whole.size(); ++t)
      if (whole[t].decay) {
        elements += whole[t].global_numel();
        pruned_total += std::count(expected[t].begin(), expected[t].end(), char(1));
      }
    EXPECT_EQ(report.elements, elements);
    EXPECT_NEAR(report.sparsity, double(pruned_total) / double(elements), 1e-12);
    ASSERT_EQ(report.per_tensor.size(), 3u);
  }
  EXPECT_EQ(updates, 3);  // after steps 2, 5 and 8 (end_step), none after it
}

TEST(Pruning, MasksEqualASortOfTheWholeTensorsAtEveryGroupSize) {
  for (int g : {1, 2, 4})
    if (world_size() % g == 0)
      for (const char* scope : {"global", "layer"}) check_group(g, scope);
}

}  // namespace
}  // namespace strata
