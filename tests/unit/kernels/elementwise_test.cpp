// Residual add, accumulate, bias broadcast and column sums: forward values against double loops;
// accumulate and sum_rows checked as the backward of residual_forward / broadcast_rows / residual_bias
// by finite differences.
#include "kernels/elementwise.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kRows = 7, kCols = 13;
constexpr size_t kN = size_t(kRows) * kCols;

template <class T>
void expect_forward_ops(double tol) {
  const auto a = rounded_to_float(random_vector(kN, 401));
  const auto b = rounded_to_float(random_vector(kN, 402));
  const auto bias = rounded_to_float(random_vector(kCols, 403));

  std::vector<double> ref_sum(kN), ref_bcast(kN), ref_rbias(kN), ref_cols(kCols, 0.0);
  for (int n = 0; n < kRows; ++n)
    for (int o = 0; o < kCols; ++o) {
      const size_t i = size_t(n) * kCols + o;
      ref_sum[i] = a[i] + b[i];
      ref_bcast[i] = bias[o];
      ref_rbias[i] = a[i] + bias[o];
      ref_cols[o] += a[i];
    }

  Vec<T> out = to_view<T>(random_vector(kN, 404));  // garbage: overwritten
  residual_forward<T>(out, to_view<T>(a), to_view<T>(b), kN);
  EXPECT_LT(rel_error(to_host(out), ref_sum), tol) << "residual_forward";

  Vec<T> acc = to_view<T>(a);
  accumulate<T>(acc, to_view<T>(b), kN);
  EXPECT_LT(rel_error(to_host(acc), ref_sum), tol) << "accumulate";

  Vec<T> bc = to_view<T>(random_vector(kN, 405));
  broadcast_rows<T>(bc, to_view<T>(bias), kRows, kCols);
  EXPECT_LT(rel_error(to_host(bc), ref_bcast), tol) << "broadcast_rows";

  Vec<T> rb = to_view<T>(random_vector(kN, 406));
  residual_bias<T>(rb, to_view<T>(a), to_view<T>(bias), kRows, kCols);
  EXPECT_LT(rel_error(to_host(rb), ref_rbias), tol) << "residual_bias";

  const auto g0 = rounded_to_float(random_vector(kCols, 407));
  Vec<T> cols = to_view<T>(g0);
  sum_rows<T>(cols, to_view<T>(a), kRows, kCols);
  EXPECT_LT(rel_error(to_host(cols), add(g0, ref_cols)), tol) << "sum_rows (accumulating)";
}

TEST(Elementwise, ForwardMatchesReferenceFloat) { expect_forward_ops<float>(kFloatTol); }
TEST(Elementwise, ForwardMatchesReferenceDouble) { expect_forward_ops<double>(kDoubleTol); }

TEST(Elementwise, ResidualBackwardIsAccumulateIntoBothInputs) {
  auto a = random_vector(kN, 411), b = random_vector(kN, 412);
  const auto R = random_vector(kN, 413);
  auto loss = [&] {
    Vec<double> out("out", kN);
    residual_forward<double>(out, to_view<double>(a), to_view<double>(b), kN);
    return dot(to_host(out), R);
  };
  const auto fd_a = finite_difference(a, loss), fd_b = finite_difference(b, loss);
  const auto g0_a = random_vector(kN, 414), g0_b = random_vector(kN, 415);
  Vec<double> da = to_view<double>(g0_a), db = to_view<double>(g0_b), dy = to_view<double>(R);
  accumulate<double>(da, dy, kN);
  accumulate<double>(db, dy, kN);
  EXPECT_LT(rel_error(to_host(da), add(g0_a, fd_a)), kGradTol);
  EXPECT_LT(rel_error(to_host(db), add(g0_b, fd_b)), kGradTol);
}

TEST(Elementwise, BiasBackwardIsSumRows) {
  auto r = random_vector(kN, 421), bias = random_vector(kCols, 422);
  const auto R = random_vector(kN, 423);
  auto loss_bcast = [&] {
    Vec<double> y("y", kN);
    broadcast_rows<double>(y, to_view<double>(bias), kRows, kCols);
    return dot(to_host(y), R);
  };
  auto loss_rbias = [&] {
    Vec<double> y("y", kN);
    residual_bias<double>(y, to_view<double>(r), to_view<double>(bias), kRows, kCols);
    return dot(to_host(y), R);
  };
  const auto fd_bcast = finite_difference(bias, loss_bcast);
  const auto fd_rbias = finite_difference(bias, loss_rbias);
  const auto fd_r = finite_difference(r, loss_rbias);

  const auto g0 = random_vector(kCols, 424);
  Vec<double> dbias = to_view<double>(g0);
  sum_rows<double>(dbias, to_view<double>(R), kRows, kCols);
  EXPECT_LT(rel_error(to_host(dbias), add(g0, fd_bcast)), kGradTol);
  EXPECT_LT(rel_error(to_host(dbias), add(g0, fd_rbias)), kGradTol);
  EXPECT_LT(rel_error(R, fd_r), kGradTol);  // d(residual_bias)/d(r) is the identity
}

TEST(Elementwise, SumRowsBothShapesOverSeveralChunksAndColumnBlocks) {
  // 70 rows = 3 row chunks (the last partial) and 130 columns = 3 column blocks: both shapes against the float64
  // reference, and bit-identical when run twice (deterministic).
  const int rows = 70, cols = 130;
  const auto dy = rounded_to_float(random_vector(size_t(rows) * cols, 431));
  const auto g0 = rounded_to_float(random_vector(cols, 432));
  std::vector<double> ref = g0;
  for (int n = 0; n < rows; ++n)
    for (int o = 0; o < cols; ++o) ref[o] += dy[size_t(n) * cols + o];
  for_each_row_shape([&](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    auto run = [&](auto tag) {
      using T = decltype(tag);
      Vec<T> db = to_view<T>(g0);
      sum_rows<T, S>(db, to_view<T>(dy), rows, cols);
      return to_host(db);
    };
    EXPECT_LT(rel_error(run(float{}), ref), kFloatTol);
    EXPECT_LT(rel_error(run(double{}), ref), kDoubleTol);
    EXPECT_EQ(run(float{}), run(float{}));
  });
}

}  // namespace
}  // namespace strata
