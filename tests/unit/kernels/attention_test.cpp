// Multi-head causal self-attention on packed qkv [B, T, 3C]: the causal softmax kernels on their own,
// then the whole forward (output and saved probabilities) against a naive double reference and the
// backward dqkv against finite differences.
#include "kernels/attention.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kBatch = 2, kSeq = 5, kHeads = 3, kHeadDim = 5, kChannels = kHeads * kHeadDim;
const AttentionShape kShape{kBatch, kSeq, kChannels, kHeads};
constexpr size_t kQkv = size_t(kBatch) * kSeq * 3 * kChannels, kOut = size_t(kBatch) * kSeq * kChannels;
constexpr size_t kAtt = size_t(kBatch) * kHeads * kSeq * kSeq;

// ---- causal softmax ----

std::vector<double> reference_causal_softmax(const std::vector<double>& s, int rows, int seq) {
  std::vector<double> p(s.size(), 0.0);
  for (int r = 0; r < rows; ++r) {
    const int i = r % seq;
    long double mx = s[r * seq];
    for (int j = 0; j <= i; ++j) mx = std::max<long double>(mx, s[r * seq + j]);
    long double sum = 0;
    for (int j = 0; j <= i; ++j) sum += std::exp((long double)s[r * seq + j] - mx);
    for (int j = 0; j <= i; ++j) p[r * seq + j] = double(std::exp((long double)s[r * seq + j] - mx) / sum);
  }
  return p;
}

TEST(CausalSoftmax, ForwardMatchesReferenceMaskIsZeroRowsSumToOne) {
  const int rows = 3 * kSeq;  // three (batch, head) blocks of T rows
  const auto s = rounded_to_float(random_vector(size_t(rows) * kSeq, 501, -3.0, 3.0));
  const auto ref = reference_causal_softmax(s, rows, kSeq);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> att = to_view<T>(s);
    causal_softmax_forward<T>(att, rows, kSeq);
    return to_host(att);
  };
  const auto pf = run(float{}), pd = run(double{});
  EXPECT_LT(rel_error(pf, ref), kFloatTol);
  EXPECT_LT(rel_error(pd, ref), kDoubleTol);
  for (int r = 0; r < rows; ++r) {
    const int i = r % kSeq;
    double sum_f = 0, sum_d = 0;
    for (int j = 0; j < kSeq; ++j) {
      if (j > i) {
        EXPECT_EQ(pf[r * kSeq + j], 0.0) << "row " << r << " col " << j;
        EXPECT_EQ(pd[r * kSeq + j], 0.0) << "row " << r << " col " << j;
      } else {
        EXPECT_GT(pd[r * kSeq + j], 0.0);
      }
      sum_f += pf[r * kSeq + j];
      sum_d += pd[r * kSeq + j];
    }
    EXPECT_NEAR(sum_f, 1.0, 1e-6) << "row " << r;
    EXPECT_NEAR(sum_d, 1.0, 1e-14) << "row " << r;
  }
}

TEST(CausalSoftmax, StableForLargeScores) {
  const int rows = kSeq;
  auto s = random_vector(size_t(rows) * kSeq, 502, -4.0, 4.0);
  for (auto& v : s) v += 1e4;  // exp(1e4) overflows without the max subtracted
  s = rounded_to_float(s);
  const auto ref = reference_causal_softmax(s, rows, kSeq);
  Vec<float> att = to_view<float>(s);
  causal_softmax_forward<float>(att, rows, kSeq);
  const auto p = to_host(att);
  for (double v : p) ASSERT_TRUE(std::isfinite(v));
  // The reference sees the same (float-representable) scores, so the float result must be accurate.
  EXPECT_LT(rel_error(p, ref), kFloatTol);
}

TEST(CausalSoftmax, BackwardMatchesFiniteDifferences) {
  const int rows = 2 * kSeq;
  const double scale = 0.37;
  auto s = random_vector(size_t(rows) * kSeq, 503, -2.0, 2.0);
  const auto R = random_vector(s.size(), 504);
  // L(S) = sum(softmax(scale-free S) * R); the kernel's gradient carries the extra factor `scale`.
  auto loss = [&] { return dot(reference_causal_softmax(s, rows, kSeq), R); };
  auto fd = finite_difference(s, loss);
  for (auto& g : fd) g *= scale;

  Vec<double> att = to_view<double>(s);
  causal_softmax_forward<double>(att, rows, kSeq);
  Vec<double> datt = to_view<double>(R);
  // dP above the diagonal is arbitrary (those P are constant 0): poison it, the kernel must zero dS there.
  {
    auto h = Kokkos::create_mirror_view(datt);
    Kokkos::deep_copy(h, datt);
    for (int r = 0; r < rows; ++r)
      for (int j = r % kSeq + 1; j < kSeq; ++j) h(r * kSeq + j) = 1e3;
    Kokkos::deep_copy(datt, h);
  }
  causal_softmax_backward<double>(datt, att, rows, kSeq, scale);
  EXPECT_LT(rel_error(to_host(datt), fd), kGradTol);
}

// ---- full attention ----

struct AttentionRef {
  std::vector<double> out, att;
};

// Naive multi-head causal attention: head h reads columns h*D..h*D+D-1 of q, k and v.
AttentionRef reference_attention(const std::vector<double>& qkv) {
  const int C = kChannels, D = kHeadDim, T = kSeq;
  auto at = [&](int b, int t, int part, int h, int d) {
    return qkv[(size_t(b) * T + t) * 3 * C + part * C + h * D + d];
  };
  AttentionRef r{std::vector<double>(kOut, 0.0), std::vector<double>(kAtt, 0.0)};
  const double scale = 1.0 / std::sqrt(double(D));
  for (int b = 0; b < kBatch; ++b)
    for (int h = 0; h < kHeads; ++h)
      for (int i = 0; i < T; ++i) {
        std::vector<double> score(i + 1);
        double mx = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          double s = 0;
          for (int d = 0; d < D; ++d) s += at(b, i, 0, h, d) * at(b, j, 1, h, d);
          score[j] = s * scale;
          mx = std::max(mx, score[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; ++j) sum += std::exp(score[j] - mx);
        for (int j = 0; j <= i; ++j) {
          const double p = std::exp(score[j] - mx) / sum;
          r.att[((size_t(b) * kHeads + h) * T + i) * T + j] = p;
          for (int d = 0; d < D; ++d) r.out[(size_t(b) * T + i) * C + h * D + d] += p * at(b, j, 2, h, d);
        }
      }
  return r;
}

template <class T>
AttentionRef run_forward(const std::vector<double>& qkv) {
  Vec<T> out = to_view<T>(random_vector(kOut, 511)), att = to_view<T>(random_vector(kAtt, 512));  // overwritten
  attention_forward<T>(out, att, to_view<T>(qkv), kShape);
  return {to_host(out), to_host(att)};
}

TEST(Attention, ForwardMatchesNaiveReference) {
  const auto qkv = rounded_to_float(random_vector(kQkv, 513, -1.5, 1.5));
  const auto ref = reference_attention(qkv);
  const auto f = run_forward<float>(qkv), d = run_forward<double>(qkv);
  EXPECT_LT(rel_error(f.out, ref.out), kFloatTol);
  EXPECT_LT(rel_error(f.att, ref.att), kFloatTol);
  EXPECT_LT(rel_error(d.out, ref.out), kDoubleTol);
  EXPECT_LT(rel_error(d.att, ref.att), kDoubleTol);
  // The first query of every (batch, head) attends only to itself: out = v at t = 0.
  for (int b = 0; b < kBatch; ++b)
    for (int c = 0; c < kChannels; ++c)
      EXPECT_NEAR(d.out[size_t(b) * kSeq * kChannels + c], qkv[size_t(b) * kSeq * 3 * kChannels + 2 * kChannels + c],
                  1e-12);
}

TEST(Attention, BackwardMatchesFiniteDifferences) {
  auto qkv = random_vector(kQkv, 521, -1.5, 1.5);
  const auto R = random_vector(kOut, 522);
  auto loss = [&] { return dot(run_forward<double>(qkv).out, R); };
  const auto fd = finite_difference(qkv, loss);

  Vec<double> x = to_view<double>(qkv), out("out", kOut), att("att", kAtt);
  attention_forward<double>(out, att, x, kShape);
  Vec<double> dqkv = to_view<double>(random_vector(kQkv, 523, 5.0, 6.0));  // garbage: overwritten
  Vec<double> scratch = to_view<double>(random_vector(size_t(kHeads) * kSeq * kSeq, 524));
  attention_backward<double>(dqkv, scratch, to_view<double>(R), x, att, kShape);
  const auto got = to_host(dqkv);
  EXPECT_LT(rel_error(got, fd), kGradTol);
  // Also per part (q, k, v), so that a wrong but small dq cannot hide behind a large dv.
  for (int part = 0; part < 3; ++part) {
    std::vector<double> g, f;
    for (int row = 0; row < kBatch * kSeq; ++row)
      for (int c = 0; c < kChannels; ++c) {
        g.push_back(got[size_t(row) * 3 * kChannels + part * kChannels + c]);
        f.push_back(fd[size_t(row) * 3 * kChannels + part * kChannels + c]);
      }
    EXPECT_LT(rel_error(g, f), kGradTol) << "part "
                                         << "qkv"[part];
  }
}

TEST(Attention, BackwardFloatMatchesDouble) {
  const auto qkv = rounded_to_float(random_vector(kQkv, 531, -1.5, 1.5));
  const auto R = rounded_to_float(random_vector(kOut, 532));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    Vec<T> x = to_view<T>(qkv), out("out", kOut), att("att", kAtt);
    attention_forward<T>(out, att, x, kShape);
    Vec<T> dqkv("dqkv", kQkv), scratch("scratch", size_t(kHeads) * kSeq * kSeq);
    attention_backward<T>(dqkv, scratch, to_view<T>(R), x, att, kShape);
    return to_host(dqkv);
  };
  EXPECT_LT(rel_error(run(float{}), run(double{})), kFloatTol);
}

}  // namespace
}  // namespace strata
