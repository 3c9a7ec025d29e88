// bf16 GEMMs: the bf16 rounding itself (round to nearest even, NaN/Inf), then C = alpha op(A) op(B) + beta C with
// both operands rounded to bf16 against a float64 reference on the rounded operands, for every transpose
// combination on strided submatrices, batched with gaps, through each host backend and through gemm() under
// GemmPrecision::BF16. The result must also differ from the unrounded fp32 GEMM (the rounding really happens).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/bf16.hpp"
#include "kernels/gemm.hpp"
#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

float float_from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xc000);
  // 1 + 2^-8 is half-way between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6: up to even.
  EXPECT_EQ(float_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  // Just above the half-way point rounds up.
  EXPECT_EQ(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(round_to_bf16(3.14159265f), 3.140625f);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits in the low bits only must not become an infinity.
  EXPECT_TRUE(std::isnan(round_to_bf16(float_from_bits(0x7f800001u))));
  // Above the largest bf16 (0x7f7f) by more than half an ulp: infinity, as IEEE rounding gives.
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(round_to_bf16(0x1p-130f), 0x1p-130f);  // subnormals with few bits are exact
}

constexpr int kM = 37, kN = 29, kK = 67;
constexpr float kAlpha = 0.75f, kBeta = -0.5f;

struct Problem {
  Trans ta, tb;
  int count, gap;
  int a_rows, a_cols, lda, b_rows, b_cols, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  std::vector<float> a, b, c;

  Problem(Trans ta_, Trans tb_, int count_ = 1, int gap_ = 0) : ta(ta_), tb(tb_), count(count_), gap(gap_) {
    a_rows = ta == Trans::No ? kM : kK, a_cols = ta == Trans::No ? kK : kM, lda = a_cols + 3;
    b_rows = tb == Trans::No ? kK : kN, b_cols = tb == Trans::No ? kN : kK, ldb = b_cols + 5;
    ldc = kN + 2;
    stride_a = int64_t(a_rows) * lda + gap, stride_b = int64_t(b_rows) * ldb + gap;
    stride_c = int64_t(kM) * ldc + gap;
    const uint64_t seed = 100 + 2 * int(ta) + int(tb);
    for (double v : random_vector(stride_a * count, seed)) a.push_back(float(v));
    for (double v : random_vector(stride_b * count, seed + 7)) b.push_back(float(v));
    for (double v : random_vector(stride_c * count, seed + 13)) c.push_back(float(v));
  }
  GemmShape shape() const { return {ta, tb, kM, kN, kK, lda, ldb, ldc}; }
  double op_a(int m, int i, int p, bool rounded) const {
    const float v = ta == Trans::No ? a[m * stride_a + int64_t(i) * lda + p] : a[m * stride_a + int64_t(p) * lda + i];
    return rounded ? round_to_bf16(v) : v;
  }
  double op_b(int m, int p, int j, bool rounded) const {
    const float v = tb == Trans::No ? b[m * stride_b + int64_t(p) * ldb + j] : b[m * stride_b + int64_t(j) * ldb + p];
    return rounded ? round_to_bf16(v) : v;
  }
  std::vector<uint16_t> bits(const std::vector<float>& v) const {
    std::vector<uint16_t> out;
    for (float x : v) out.push_back(float_to_bf16(x));
    return out;
  }

  // got: C after the GEMM. Checks C against the float64 GEMM of the rounded operands (error bound of an fp32
  // accumulation of K terms), everything outside C untouched, and returns got's distance to the unrounded GEMM.
  double check(const std::vector<float>& got) const {
    std::vector<double> got_c, unrounded_c;
    for (int m = 0; m < count; ++m)
      for (int i = 0; i < kM; ++i)
        for (int j = 0; j < kN; ++j) {
          double s = 0, s_abs = 0, s_unrounded = 0;
          for (int p = 0; p < kK; ++p) {
            s += op_a(m, i, p, true) * op_b(m, p, j, true);
            s_abs += std::abs(op_a(m, i, p, true) * op_b(m, p, j, true));
            s_unrounded += op_a(m, i, p, false) * op_b(m, p, j, false);
          }
          const int64_t idx = m * stride_c + int64_t(i) * ldc + j;
          const double ref = kAlpha * s + kBeta * double(c[idx]);
          const double bound = 2e-7 * kK * (kAlpha * s_abs + std::abs(kBeta * c[idx])) + 1e-30;
          EXPECT_LE(std::abs(got[idx] - ref), bound) << "C(" << m << ", " << i << ", " << j << ")";
          got_c.push_back(got[idx]);
          unrounded_c.push_back(kAlpha * s_unrounded + kBeta * double(c[idx]));
        }
    for (size_t i = 0; i < got.size(); ++i) {
      const int64_t in = int64_t(i) % stride_c;
      const bool in_c = int64_t(i) / stride_c < count && in < int64_t(kM) * ldc && in % ldc < kN;
      if (!in_c) EXPECT_EQ(got[i], c[i]) << "element " << i << " outside C was written";
    }
    return rel_error(got_c, unrounded_c);
  }
};

class GemmBf16 : public ::testing::TestWithParam<std::tuple<Trans, Trans>> {};

void expect_backend(const Problem& pb, Bf16Backend backend) {
  const auto a = pb.bits(pb.a), b = pb.bits(pb.b);
  std::vector<float> c = pb.c;
  gemm_host_bf16(pb.shape(), kAlpha, a.data(), pb.stride_a, b.data(), pb.stride_b, kBeta, c.data(), pb.stride_c,
                 pb.count, backend);
  // bf16 operands are ~3 significant digits: the unrounded product differs by ~1e-3, far above fp32 error.
  EXPECT_GT(pb.check(c), 3e-4);
}

TEST_P(GemmBf16, WidenedSgemmMatchesReference) {
  const auto [ta, tb] = GetParam();
  expect_backend(Problem(ta, tb), Bf16Backend::WidenedSgemm);
  expect_backend(Problem(ta, tb, 3, 11), Bf16Backend::WidenedSgemm);
}

TEST_P(GemmBf16, OneDnnMatchesReference) {
  if (!onednn_bf16_available()) {
    // Not a silent skip: say why (oneDNN absent from the build, or only its reference kernel on this CPU).
    GTEST_SKIP() << "oneDNN bf16 matmul not available here (needs oneDNN and AVX-512)";
  }
  const auto [ta, tb] = GetParam();
  expect_backend(Problem(ta, tb), Bf16Backend::OneDnn);
  expect_backend(Problem(ta, tb, 3, 11), Bf16Backend::OneDnn);
}

TEST_P(GemmBf16, DispatchUnderBf16PrecisionRoundsTheOperands) {
  const auto [ta, tb] = GetParam();
  ScopedGemmPrecision bf16(GemmPrecision::BF16);
  for (const int count : {1, 3}) {
    SCOPED_TRACE(count == 1 ? "gemm" : "gemm_strided_batched");
    const Problem pb(ta, tb, count, count == 1 ? 0 : 11);
    auto view = [](const std::vector<float>& v) { return to_view<float>(std::vector<double>(v.begin(), v.end())); };
    Vec<float> a = view(pb.a), b = view(pb.b), c = view(pb.c);
    if (count == 1)
      gemm<float>(pb.shape(), kAlpha, a.data(), b.data(), kBeta, c.data());
    else
      gemm_strided_batched<float>(pb.shape(), kAlpha, a.data(), pb.stride_a, b.data(), pb.stride_b, kBeta, c.data(),
                                  pb.stride_c, pb.count);
    Kokkos::fence();
    const auto got = to_host(c);
    EXPECT_GT(pb.check(std::vector<float>(got.begin(), got.end())), 3e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmBf16,
                         ::testing::Combine(::testing::Values(Trans::No, Trans::Yes),
                                            ::testing::Values(Trans::No, Trans::Yes)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Trans::No ? "N" : "T") +
                                  (std::get<1>(info.param) == Trans::No ? "N" : "T");
                         });

TEST(GemmBf16Precision, DoubleGemmsStayDouble) {
  ScopedGemmPrecision bf16(GemmPrecision::BF16);
  // 1 + 2^-20 is not a bf16; in a double GEMM it must survive.
  Vec<double> a = to_view<double>({1.0 + 0x1p-20}), b = to_view<double>({1.0}), c("c", 1);
  gemm<double>({Trans::No, Trans::No, 1, 1, 1, 1, 1, 1}, 1.0, a.data(), b.data(), 0.0, c.data());
  EXPECT_EQ(to_host(c)[0], 1.0 + 0x1p-20);
  EXPECT_EQ(gemm_precision(), GemmPrecision::BF16);
}

TEST(GemmBf16Precision, ScopeRestoresThePreviousPrecision) {
  EXPECT_EQ(gemm_precision(), GemmPrecision::FP32);
  {
    ScopedGemmPrecision bf16(GemmPrecision::BF16);
    EXPECT_EQ(gemm_precision(), GemmPrecision::BF16);
  }
  EXPECT_EQ(gemm_precision(), GemmPrecision::FP32);
}

}  // namespace
}  // namespace strata
