// Multi-head causal self-attention on packed qkv [B, T, 3C]: the causal softmax kernels on their own (both row
// shapes, whole matrices and query tiles), then the tiled attention against a naive double reference and its
// backward against finite differences, at tile sizes that divide T, that do not, of one query and of all T.
#include "kernels/attention.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kBatch = 2, kSeq = 7, kHeads = 3, kHeadDim = 5, kChannels = kHeads * kHeadDim;
constexpr size_t kQkv = size_t(kBatch) * kSeq * 3 * kChannels, kOut = size_t(kBatch) * kSeq * kChannels;
// Tiles of 1 query, 3 (7 = 3 + 3 + 1), 4 (4 + 3), all 7, and the default (one tile at this length).
constexpr int kBlocks[] = {1, 3, 4, kSeq, 0};

AttentionShape shape_with_block(int block) { return {kBatch, kSeq, kChannels, kHeads, block}; }

// ---- causal softmax ----

// Rows of c over s[rows, cols]: row r is query first_query + r % block_rows.
std::vector<double> reference_causal_softmax(const std::vector<double>& s, const CausalRows& c) {
  std::vector<double> p(s.size(), 0.0);
  for (int64_t r = 0; r < c.rows; ++r) {
    const int64_t i = c.first_query + r % c.block_rows, base = r * c.cols;
    long double mx = s[base];
    for (int64_t j = 0; j <= i; ++j) mx = std::max<long double>(mx, s[base + j]);
    long double sum = 0;
    for (int64_t j = 0; j <= i; ++j) sum += std::exp((long double)s[base + j] - mx);
    for (int64_t j = 0; j <= i; ++j) p[base + j] = double(std::exp((long double)s[base + j] - mx) / sum);
  }
  return p;
}

// Whole matrices (three T x T blocks) and a tile of queries 4..6 over keys 0..6 (two heads).
const CausalRows kWhole = full_causal_rows(3 * kSeq, kSeq);
const CausalRows kTile{2 * 3, 3, 4, kSeq};

TEST(CausalSoftmax, ForwardMatchesReferenceMaskIsZeroRowsSumToOne) {
  for (const CausalRows& c : {kWhole, kTile}) {
    SCOPED_TRACE("first query " + std::to_string(c.first_query));
    const auto s = rounded_to_float(random_vector(size_t(c.rows) * c.cols, 501, -3.0, 3.0));
    const auto ref = reference_causal_softmax(s, c);
    for_each_row_shape([&](auto shape) {
      auto run = [&](auto tag) {
        using T = decltype(tag);
        Vec<T> att = to_view<T>(s);
        causal_softmax_forward<T, decltype(shape)::value>(att, c);
        return to_host(att);
      };
      const auto pf = run(float{}), pd = run(double{});
      EXPECT_LT(rel_error(pf, ref), kFloatTol);
      EXPECT_LT(rel_error(pd, ref), kDoubleTol);
      for (int64_t r = 0; r < c.rows; ++r) {
        const int64_t i = c.first_query + r % c.block_rows;
        double sum_f = 0, sum_d = 0;
        for (int64_t j = 0; j < c.cols; ++j) {
          const size_t at = size_t(r * c.cols + j);
          if (j > i) {
            EXPECT_EQ(pf[at], 0.0) << "row " << r << " col " << j;
            EXPECT_EQ(pd[at], 0.0) << "row " << r << " col " << j;
          } else {
            EXPECT_GT(pd[at], 0.0);
          }
          sum_f += pf[at];
          sum_d += pd[at];
        }
        EXPECT_NEAR(sum_f, 1.0, 1e-6) << "row " << r;
        EXPECT_NEAR(sum_d, 1.0, 1e-14) << "row " << r;
      }
    });
  }
}

TEST(CausalSoftmax, StableForLargeScores) {
  auto s = random_vector(size_t(kWhole.rows) * kSeq, 502, -4.0, 4.0);
  for (auto& v : s) v += 1e4;  // exp(1e4) overflows without the max subtracted
  s = rounded_to_float(s);
  const auto ref = reference_causal_softmax(s, kWhole);
  for_each_row_shape([&](auto shape) {
    Vec<float> att = to_view<float>(s);
    causal_softmax_forward<float, decltype(shape)::value>(att, kWhole);
    const auto p = to_host(att);
    for (double v : p) ASSERT_TRUE(std::isfinite(v));
    // The reference sees the same (float-representable) scores, so the float result must be accurate.
    EXPECT_LT(rel_error(p, ref), kFloatTol);
  });
}

TEST(CausalSoftmax, BackwardMatchesFiniteDifferences) {
  const double scale = 0.37;
  for (const CausalRows& c : {kWhole, kTile}) {
    SCOPED_TRACE("first query " + std::to_string(c.first_query));
    auto s = random_vector(size_t(c.rows) * c.cols, 503, -2.0, 2.0);
    const auto R = random_vector(s.size(), 504);
    // L(S) = sum(softmax(scale-free S) * R); the kernel's gradient carries the extra factor `scale`.
    auto loss = [&] { return dot(reference_causal_softmax(s, c), R); };
    auto fd = finite_difference(s, loss);
    for (auto& g : fd) g *= scale;
    for_each_row_shape([&](auto shape) {
      constexpr RowShape S = decltype(shape)::value;
      Vec<double> att = to_view<double>(s);
      causal_softmax_forward<double, S>(att, c);
      // dP after the query is arbitrary (those P are constant 0): poison it, the kernel must zero dS there.
      auto poisoned = R;
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t j = c.first_query + r % c.block_rows + 1; j < c.cols; ++j) poisoned[size_t(r * c.cols + j)] = 1e3;
      Vec<double> datt = to_view<double>(poisoned);
      causal_softmax_backward<double, S>(datt, att, c, scale);
      EXPECT_LT(rel_error(to_host(datt), fd), kGradTol);
    });
  }
}

// ---- full attention ----

// Naive multi-head causal attention: head h reads columns h*D..h*D+D-1 of q, k and v. With an active `dropout`,
// probability (b, h, i, j) is kept, scaled by 2^16 / (2^16 - t), iff the 16-bit lane c mod 4 of bits(key, c / 4)
// reaches t = round(p 2^16), for c = ((first_sample + b) * heads_total + head_offset + h) * T + i) * T + j
// (kernels/dropout.hpp).
std::vector<double> reference_attention(const std::vector<double>& qkv, const AttentionDropout& dropout = {}) {
  const int C = kChannels, D = kHeadDim, T = kSeq;
  auto at = [&](int b, int t, int part, int h, int d) {
    return qkv[(size_t(b) * T + t) * 3 * C + part * C + h * D + d];
  };
  std::vector<double> out(kOut, 0.0);
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
          double p = std::exp(score[j] - mx) / sum;
          if (dropout.active()) {
            const uint64_t sample = uint64_t(dropout.mask.first_sample + b);
            const uint64_t counter =
                ((sample * uint64_t(dropout.heads_total) + uint64_t(dropout.head_offset + h)) * T + i) * T + j;
            const uint64_t lane = (rng::bits(dropout.mask.key, counter / 4) >> (16 * (counter % 4))) & 0xFFFF;
            const double t = std::round(dropout.mask.p * 65536);
            p = double(lane) >= t ? p * 65536 / (65536 - t) : 0.0;
          }
          for (int d = 0; d < D; ++d) out[(size_t(b) * T + i) * C + h * D + d] += p * at(b, j, 2, h, d);
        }
      }
  return out;
}

// Scratch filled with garbage: the kernels must overwrite what they read.
template <class T>
Vec<T> garbage_scratch(const AttentionShape& s) {
  return to_view<T>(random_vector(attention_scratch_size(s), 512, 1e3, 2e3));
}

template <class T>
std::vector<double> run_forward(const std::vector<double>& qkv, const AttentionShape& s,
                                const AttentionDropout& dropout = {}) {
  Vec<T> out = to_view<T>(random_vector(kOut, 511));  // overwritten
  attention_forward<T>(out, garbage_scratch<T>(s), to_view<T>(qkv), s, dropout);
  return to_host(out);
}

template <class T>
std::vector<double> run_backward(const std::vector<double>& qkv, const std::vector<double>& R, const AttentionShape& s,
                                 const AttentionDropout& dropout = {}) {
  Vec<T> x = to_view<T>(qkv), out("out", kOut);
  attention_forward<T>(out, garbage_scratch<T>(s), x, s, dropout);
  Vec<T> dqkv = to_view<T>(random_vector(kQkv, 523, 5.0, 6.0));  // garbage: overwritten
  attention_backward<T>(dqkv, garbage_scratch<T>(s), to_view<T>(R), x, s, dropout);
  return to_host(dqkv);
}

// Dropout at p = 0.3 of samples 5 and 6 of a batch whose probabilities have 7 heads; these are heads 2..4.
AttentionDropout test_dropout(uint64_t step = 9) {
  return {dropout_mask(17, "dropout.attention.1", int64_t(step), 0.3, 5, int64_t(7) * kSeq * kSeq), 7, 2};
}

TEST(Attention, ForwardMatchesNaiveReferenceAtEveryTileSize) {
  const auto qkv = rounded_to_float(random_vector(kQkv, 513, -1.5, 1.5));
  const auto ref = reference_attention(qkv);
  for (int block : kBlocks) {
    SCOPED_TRACE("query block " + std::to_string(block));
    const auto f = run_forward<float>(qkv, shape_with_block(block));
    const auto d = run_forward<double>(qkv, shape_with_block(block));
    EXPECT_LT(rel_error(f, ref), kFloatTol);
    EXPECT_LT(rel_error(d, ref), kDoubleTol);
    // The first query of every (batch, head) attends only to itself: out = v at t = 0.
    for (int b = 0; b < kBatch; ++b)
      for (int c = 0; c < kChannels; ++c)
        EXPECT_NEAR(d[size_t(b) * kSeq * kChannels + c], qkv[size_t(b) * kSeq * 3 * kChannels + 2 * kChannels + c],
                    1e-12);
  }
}

TEST(Attention, BackwardMatchesFiniteDifferencesAtEveryTileSize) {
  auto qkv = random_vector(kQkv, 521, -1.5, 1.5);
  const auto R = random_vector(kOut, 522);
  auto loss = [&] { return dot(reference_attention(qkv), R); };
  const auto fd = finite_difference(qkv, loss);
  for (int block : kBlocks) {
    SCOPED_TRACE("query block " + std::to_string(block));
    const auto got = run_backward<double>(qkv, R, shape_with_block(block));
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
}

TEST(Attention, BackwardFloatMatchesDouble) {
  const auto qkv = rounded_to_float(random_vector(kQkv, 531, -1.5, 1.5));
  const auto R = rounded_to_float(random_vector(kOut, 532));
  for (int block : kBlocks) {
    SCOPED_TRACE("query block " + std::to_string(block));
    const auto s = shape_with_block(block);
    EXPECT_LT(rel_error(run_backward<float>(qkv, R, s), run_backward<double>(qkv, R, s)), kFloatTol);
  }
}

TEST(Attention, DropoutMatchesNaiveReferenceAtEveryTileSize) {
  const auto qkv = rounded_to_float(random_vector(kQkv, 541, -1.5, 1.5));
  const AttentionDropout dropout = test_dropout();
  const auto ref = reference_attention(qkv, dropout);
  // The mask does something: not the undropped result, and another step draws another mask.
  EXPECT_GT(max_abs_diff(ref, reference_attention(qkv)), 0.1);
  EXPECT_GT(max_abs_diff(ref, reference_attention(qkv, test_dropout(10))), 0.1);
  for (int block : kBlocks) {
    SCOPED_TRACE("query block " + std::to_string(block));
    EXPECT_LT(rel_error(run_forward<float>(qkv, shape_with_block(block), dropout), ref), kFloatTol);
    EXPECT_LT(rel_error(run_forward<double>(qkv, shape_with_block(block), dropout), ref), kDoubleTol);
  }
}

TEST(Attention, DropoutBackwardMatchesFiniteDifferencesAtEveryTileSize) {
  // The masks are a function of the counters only, so the dropped attention is differentiable in qkv.
  auto qkv = random_vector(kQkv, 551, -1.5, 1.5);
  const auto R = random_vector(kOut, 552);
  const AttentionDropout dropout = test_dropout();
  auto loss = [&] { return dot(reference_attention(qkv, dropout), R); };
  const auto fd = finite_difference(qkv, loss);
  for (int block : kBlocks) {
    SCOPED_TRACE("query block " + std::to_string(block));
    EXPECT_LT(rel_error(run_backward<double>(qkv, R, shape_with_block(block), dropout), fd), kGradTol);
  }
  const auto s = shape_with_block(3);
  EXPECT_LT(rel_error(run_backward<float>(rounded_to_float(qkv), R, s, dropout),
                      run_backward<double>(rounded_to_float(qkv), R, s, dropout)),
            kFloatTol);
}

TEST(Attention, ScratchHoldsOneTileNotTheWholeScoreMatrix) {
  // T = 1024, 16 heads: tiles of 128 queries on the host, 256 on a GPU; the scratch (scores and their gradient
  // for one tile) is then 2 x 16 x 256 x 1024 at most, an eighth of one sequence's 16 x 1024 x 1024 scores.
  const AttentionShape gpt2_medium{8, 1024, 1024, 16};
  const int block = kDeviceMemory ? 256 : 128;
  EXPECT_EQ(gpt2_medium.block(), block);
  EXPECT_EQ(attention_scratch_size(gpt2_medium), size_t(2) * 16 * block * 1024);
  EXPECT_EQ(AttentionShape({1, 13, 12, 3}).block(), 13);  // short sequences: one tile
  EXPECT_EQ(AttentionShape({1, 13, 12, 3, 5}).block(), 5);
  EXPECT_EQ(AttentionShape({1, 13, 12, 3, 50}).block(), 13);
}

TEST(Attention, RejectsTooSmallScratch) {
  const auto s = shape_with_block(3);
  Vec<double> out("out", kOut), qkv("qkv", kQkv), small("small", attention_scratch_size(s) - 1);
  EXPECT_THROW(attention_forward<double>(out, small, qkv, s), std::exception);
  Vec<double> dqkv("dqkv", kQkv);
  EXPECT_THROW(attention_backward<double>(dqkv, small, out, qkv, s), std::exception);
}

}  // namespace
}  // namespace strata
