// GPT activations kept as bf16 under train.precision = bf16 (Gpt::store_gemm_inputs_bf16): the loss and every
// gradient bit-identical to keeping them in float (the GEMMs round them to bf16 either way), the slot smaller by
// exactly the GEMM-only buffers at half width; refused where it would change results.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/error.hpp"
#include "kernels/gemm.hpp"
#include "models/gpt.hpp"

namespace strata {
namespace {

ModelConfig small_gpt() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.d_model = 32;
  m.vocab_size = 53;
  m.seq_len = 9;
  return m;
}

constexpr int kBatch = 3;

struct StepResult {
  float loss;
  std::vector<float> grads;
  size_t slot_bytes;
};

StepResult forward_backward(bool bf16_storage) {
  const ModelConfig m = small_gpt();
  Gpt<float> model(m, kBatch);
  model.store_gemm_inputs_bf16(bf16_storage);
  model.params().initialize(11);
  const int N = kBatch * m.seq_len;
  Vec<int32_t> x("x", N), y("y", N);
  auto hx = Kokkos::create_mirror_view(x);
  auto hy = Kokkos::create_mirror_view(y);
  std::mt19937 gen(5);
  for (int i = 0; i < N; ++i) hx(i) = int32_t(gen() % m.vocab_size), hy(i) = int32_t(gen() % m.vocab_size);
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(y, hy);
  model.params().zero_grads();
  const float loss = model.forward({x, {}, y});
  model.backward();
  auto g = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.params().grads());
  return {loss, std::vector<float>(g.data(), g.data() + g.extent(0)), model.slot_bytes()};
}

TEST(GptBf16Storage, SameLossAndGradientsInLessMemory) {
  ScopedGemmPrecision bf16(GemmPrecision::BF16);
  const StepResult packed = forward_backward(true), plain = forward_backward(false);
  EXPECT_EQ(packed.loss, plain.loss);
  ASSERT_EQ(packed.grads.size(), plain.grads.size());
  size_t differing = 0;
  for (size_t i = 0; i < plain.grads.size(); ++i) differing += packed.grads[i] != plain.grads[i];
  EXPECT_EQ(differing, 0u) << "of " << plain.grads.size() << " gradients";
  // Per block ln1 (C), qkv (3C), attention output (C), ln2 (C), GELU output (4C) per token: 10C values at 2 bytes
  // instead of 4.
  const ModelConfig m = small_gpt();
  const size_t saved = size_t(m.n_layer) * kBatch * m.seq_len * 10 * m.d_model * 2;
  EXPECT_EQ(plain.slot_bytes - packed.slot_bytes, saved);
}

TEST(GptBf16Storage, RefusedWhereItWouldChangeResults) {
  // With fp32 GEMMs the packed values would be rounded where the GEMMs do not round.
  ScopedGemmPrecision fp32(GemmPrecision::FP32);
  EXPECT_THROW(forward_backward(true), Error);
  // Chosen after the first forward: the slots already hold float storage.
  ScopedGemmPrecision bf16(GemmPrecision::BF16);
  Gpt<float> model(small_gpt(), 1);
  model.params().initialize(1);
  Vec<int32_t> x("x", small_gpt().seq_len), y("y", small_gpt().seq_len);
  model.forward({x, {}, y});
  EXPECT_THROW(model.store_gemm_inputs_bf16(true), Error);
  Gpt<double> double_model(small_gpt(), 1);
  EXPECT_THROW(double_model.store_gemm_inputs_bf16(true), Error);
}

}  // namespace
}  // namespace strata
