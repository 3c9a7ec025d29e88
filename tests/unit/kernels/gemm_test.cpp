// The GEMM dispatch: row-major C = alpha op(A) op(B) + beta C for all four transpose combinations, on
// strided submatrices (leading dimensions larger than the row length; the padding must stay untouched),
// the batched form with gaps between matrices, and the shape checks.
#include "kernels/gemm.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "test_util.hpp"

namespace strata {

// Readable parameter names in test listings.
static void PrintTo(Trans t, std::ostream* os) { *os << (t == Trans::No ? "Trans::No" : "Trans::Yes"); }

namespace {

using namespace strata::testing;

constexpr int kM = 7, kN = 5, kK = 9;
constexpr double kAlpha = 0.7, kBeta = -0.3;

// One GEMM problem laid out in padded buffers; `count` matrices per operand, `gap` extra elements between them.
struct Problem {
  Trans ta, tb;
  int count = 1, gap = 0;
  int a_rows, lda, b_rows, ldb, ldc;
  int64_t stride_a, stride_b, stride_c;
  std::vector<double> a, b, c;

  Problem(Trans ta_, Trans tb_, int count_ = 1, int gap_ = 0) : ta(ta_), tb(tb_), count(count_), gap(gap_) {
    a_rows = ta == Trans::No ? kM : kK;
    lda = (ta == Trans::No ? kK : kM) + 3;
    b_rows = tb == Trans::No ? kK : kN;
    ldb = (tb == Trans::No ? kN : kK) + 2;
    ldc = kN + 4;
    stride_a = int64_t(a_rows) * lda + gap;
    stride_b = int64_t(b_rows) * ldb + gap;
    stride_c = int64_t(kM) * ldc + gap;
    a = rounded_to_float(random_vector(stride_a * count, 901 + int(ta) * 2 + int(tb)));
    b = rounded_to_float(random_vector(stride_b * count, 911 + int(ta) * 2 + int(tb)));
    c = rounded_to_float(random_vector(stride_c * count, 921 + int(ta) * 2 + int(tb)));
  }
  GemmShape shape() const { return {ta, tb, kM, kN, kK, lda, ldb, ldc}; }

  // Elementwise op(A)(i, p) and op(B)(p, j) of matrix `m`, read from the padded storage.
  double op_a(int m, int i, int p) const {
    return ta == Trans::No ? a[m * stride_a + int64_t(i) * lda + p] : a[m * stride_a + int64_t(p) * lda + i];
  }
  double op_b(int m, int p, int j) const {
    return tb == Trans::No ? b[m * stride_b + int64_t(p) * ldb + j] : b[m * stride_b + int64_t(j) * ldb + p];
  }

  // Reference: C entries updated, everything else (row padding, gaps) as it was.
  std::vector<double> reference() const {
    std::vector<double> out = c;
    for (int m = 0; m < count; ++m)
      for (int i = 0; i < kM; ++i)
        for (int j = 0; j < kN; ++j) {
          double s = 0;
          for (int p = 0; p < kK; ++p) s += op_a(m, i, p) * op_b(m, p, j);
          const int64_t idx = m * stride_c + int64_t(i) * ldc + j;
          out[idx] = kAlpha * s + kBeta * c[idx];
        }
    return out;
  }
  bool is_c_entry(size_t idx) const {
    const int64_t in = int64_t(idx) % stride_c;
    return int64_t(idx) / stride_c < count && in < int64_t(kM) * ldc && in % ldc < kN;
  }
};

enum class Path { Dispatch, Host, Batched };

template <class T>
std::vector<double> run(const Problem& pb, Path path) {
  Vec<T> a = to_view<T>(pb.a), b = to_view<T>(pb.b), c = to_view<T>(pb.c);
  if (path == Path::Batched) {
    gemm_strided_batched<T>(pb.shape(), T(kAlpha), a.data(), pb.stride_a, b.data(), pb.stride_b, T(kBeta), c.data(),
                            pb.stride_c, pb.count);
  } else if (path == Path::Dispatch) {
    gemm<T>(pb.shape(), T(kAlpha), a.data(), b.data(), T(kBeta), c.data());
  } else {
    // gemm_host needs host memory: go through mirrors.
    auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c);
    gemm_host<T>(pb.shape(), T(kAlpha), ha.data(), hb.data(), T(kBeta), hc.data());
    Kokkos::deep_copy(c, hc);
  }
  Kokkos::fence();
  return to_host(c);
}

template <class T>
void expect_matches(const Problem& pb, Path path, double tol) {
  const auto ref = pb.reference();
  const auto got = run<T>(pb, path);
  std::vector<double> got_c, ref_c;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (pb.is_c_entry(i)) {
      got_c.push_back(got[i]);
      ref_c.push_back(ref[i]);
    } else {
      // Padding and gaps are not part of C: bit-for-bit untouched.
      ASSERT_EQ(got[i], double(T(pb.c[i]))) << "element " << i << " outside C was written";
    }
  }
  ASSERT_EQ(got_c.size(), size_t(pb.count) * kM * kN);
  EXPECT_LT(rel_error(got_c, ref_c), tol);
}

class GemmTrans : public ::testing::TestWithParam<std::tuple<Trans, Trans>> {};

TEST_P(GemmTrans, DispatchMatchesReferenceOnStridedSubmatrices) {
  const auto [ta, tb] = GetParam();
  const Problem pb(ta, tb);
  expect_matches<float>(pb, Path::Dispatch, kFloatTol);
  expect_matches<double>(pb, Path::Dispatch, kDoubleTol);
}

TEST_P(GemmTrans, HostPathMatchesReference) {
  const auto [ta, tb] = GetParam();
  const Problem pb(ta, tb);
  expect_matches<float>(pb, Path::Host, kFloatTol);
  expect_matches<double>(pb, Path::Host, kDoubleTol);
}

TEST_P(GemmTrans, StridedBatchedMatchesReference) {
  const auto [ta, tb] = GetParam();
  const Problem pb(ta, tb, /*count=*/3, /*gap=*/6);
  expect_matches<float>(pb, Path::Batched, kFloatTol);
  expect_matches<double>(pb, Path::Batched, kDoubleTol);
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTrans,
                         ::testing::Combine(::testing::Values(Trans::No, Trans::Yes),
                                            ::testing::Values(Trans::No, Trans::Yes)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == Trans::No ? "N" : "T") +
                                  (std::get<1>(info.param) == Trans::No ? "N" : "T");
                         });

TEST(Gemm, BetaZeroIgnoresNanInC) {
  // BLAS semantics: with beta = 0, C is not read (NaN or garbage in C must not leak into the result).
  Problem pb(Trans::No, Trans::No);
  for (size_t i = 0; i < pb.c.size(); ++i)
    if (pb.is_c_entry(i)) pb.c[i] = NAN;
  Vec<double> a = to_view<double>(pb.a), b = to_view<double>(pb.b), c = to_view<double>(pb.c);
  gemm<double>(pb.shape(), 1.0, a.data(), b.data(), 0.0, c.data());
  const auto got = to_host(c);
  for (size_t i = 0; i < got.size(); ++i)
    if (pb.is_c_entry(i)) ASSERT_TRUE(std::isfinite(got[i])) << i;
}

TEST(Gemm, RejectsLeadingDimensionsTooSmall) {
  Vec<double> a("a", 100), b("b", 100), c("c", 100);
  // A is [M=4, K=6] untransposed: lda must be >= 6.
  EXPECT_THROW(gemm<double>({Trans::No, Trans::No, 4, 3, 6, 5, 3, 3}, 1.0, a.data(), b.data(), 0.0, c.data()), Error);
  // Transposed A is stored [K, M]: lda >= M = 4 suffices.
  EXPECT_NO_THROW(gemm<double>({Trans::Yes, Trans::No, 4, 3, 6, 4, 3, 3}, 1.0, a.data(), b.data(), 0.0, c.data()));
  // ldc < n.
  EXPECT_THROW(gemm<double>({Trans::No, Trans::No, 4, 3, 6, 6, 3, 2}, 1.0, a.data(), b.data(), 0.0, c.data()), Error);
}

}  // namespace
}  // namespace strata
