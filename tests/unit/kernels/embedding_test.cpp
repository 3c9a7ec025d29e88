// Token + position embedding: forward against a double reference, backward (scatter-add into the
// tables, accumulating) against finite differences, in both shapes (the GPU's sorts the tokens), full and
// vocabulary-sharded.
#include "kernels/embedding.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kBatch = 2, kSeq = 5, kChannels = 13, kVocab = 11, kMaxSeq = 7;
constexpr int kRows = kBatch * kSeq;

struct EmbeddingData {
  std::vector<int32_t> tokens = random_tokens(kRows, kVocab, 101);
  std::vector<double> wte = rounded_to_float(random_vector(size_t(kVocab) * kChannels, 102));
  std::vector<double> wpe = rounded_to_float(random_vector(size_t(kMaxSeq) * kChannels, 103));
  EmbeddingData() {
    tokens[7] = tokens[2];  // a repeated token: its gradient row sums two contributions
    tokens[4] = tokens[2];
  }
};

std::vector<double> reference_forward(const std::vector<int32_t>& tokens, const std::vector<double>& wte,
                                      const std::vector<double>& wpe) {
  std::vector<double> out(size_t(kRows) * kChannels);
  for (int b = 0; b < kBatch; ++b)
    for (int t = 0; t < kSeq; ++t) {
      const int row = b * kSeq + t;
      for (int c = 0; c < kChannels; ++c)
        out[row * kChannels + c] = wte[tokens[row] * kChannels + c] + wpe[t * kChannels + c];
    }
  return out;
}

template <class T>
std::vector<double> run_forward(const std::vector<int32_t>& tokens, const std::vector<double>& wte,
                                const std::vector<double>& wpe) {
  Vec<T> out("out", size_t(kRows) * kChannels);
  Vec<int32_t> tok = to_view(tokens);
  embedding_forward<T>(out, tok, to_view<T>(wte), to_view<T>(wpe), kBatch, kSeq, kChannels);
  return to_host(out);
}

TEST(Embedding, ForwardMatchesReferenceFloat) {
  EmbeddingData d;
  const auto ref = reference_forward(d.tokens, d.wte, d.wpe);
  EXPECT_LT(rel_error(run_forward<float>(d.tokens, d.wte, d.wpe), ref), kFloatTol);
}

TEST(Embedding, ForwardMatchesReferenceDouble) {
  EmbeddingData d;
  const auto ref = reference_forward(d.tokens, d.wte, d.wpe);
  EXPECT_LT(rel_error(run_forward<double>(d.tokens, d.wte, d.wpe), ref), kDoubleTol);
}

TEST(Embedding, BackwardMatchesFiniteDifferencesAndAccumulates) {
  for_each_row_shape([](auto shape) {
    constexpr RowShape S = decltype(shape)::value;
    EmbeddingData d;
    const auto R = random_vector(size_t(kRows) * kChannels, 104);
    auto loss = [&] { return dot(run_forward<double>(d.tokens, d.wte, d.wpe), R); };
    const auto fd_wte = finite_difference(d.wte, loss);
    const auto fd_wpe = finite_difference(d.wpe, loss);

    // Start from nonzero gradient buffers: backward must add to them.
    const auto g0_wte = random_vector(d.wte.size(), 105);
    const auto g0_wpe = random_vector(d.wpe.size(), 106);
    Vec<double> dwte = to_view<double>(g0_wte), dwpe = to_view<double>(g0_wpe);
    Vec<int32_t> tok = to_view(d.tokens);
    embedding_backward<double, S>(dwte, dwpe, tok, to_view<double>(R), kBatch, kSeq, kChannels);

    EXPECT_LT(rel_error(to_host(dwte), add(g0_wte, fd_wte)), kGradTol);
    EXPECT_LT(rel_error(to_host(dwpe), add(g0_wpe, fd_wpe)), kGradTol);
    // Positions beyond seq (T < Tmax) get no gradient; tokens that never occur get none either.
    const auto h_wpe = to_host(dwpe);
    for (size_t i = size_t(kSeq) * kChannels; i < h_wpe.size(); ++i) EXPECT_EQ(h_wpe[i], g0_wpe[i]) << i;
    const auto h_wte = to_host(dwte);
    for (int v = 0; v < kVocab; ++v)
      if (std::find(d.tokens.begin(), d.tokens.end(), v) == d.tokens.end())
        for (int c = 0; c < kChannels; ++c) EXPECT_EQ(h_wte[v * kChannels + c], g0_wte[v * kChannels + c]) << v;
  });
}

TEST(Embedding, BackwardFloatMatchesDoubleReference) {
  EmbeddingData d;
  const auto R = rounded_to_float(random_vector(size_t(kRows) * kChannels, 107));
  std::vector<double> ref_wte(d.wte.size(), 0.0), ref_wpe(d.wpe.size(), 0.0);
  for (int b = 0; b < kBatch; ++b)
    for (int t = 0; t < kSeq; ++t)
      for (int c = 0; c < kChannels; ++c) {
        const int row = b * kSeq + t;
        ref_wte[d.tokens[row] * kChannels + c] += R[row * kChannels + c];
        ref_wpe[t * kChannels + c] += R[row * kChannels + c];
      }
  Vec<float> dwte("dwte", d.wte.size()), dwpe("dwpe", d.wpe.size());
  Vec<int32_t> tok = to_view(d.tokens);
  embedding_backward<float>(dwte, dwpe, tok, to_view<float>(R), kBatch, kSeq, kChannels);
  EXPECT_LT(rel_error(to_host(dwte), ref_wte), kFloatTol);
  EXPECT_LT(rel_error(to_host(dwpe), ref_wpe), kFloatTol);
}

// Many repeats (64 positions over 5 tokens) in float: the shapes sum each element in the same order, so they agree
// bit for bit; the sharded form over three slices of the vocabulary (tokens outside a slice skipped) gives the
// same rows.
TEST(Embedding, ShapesAgreeBitForBitAndShardsCoverTheVocabulary) {
  const int batch = 4, seq = 16, C = 70, V = 9, N = batch * seq;
  auto tokens = random_tokens(N, 5, 108);
  const auto R = rounded_to_float(random_vector(size_t(N) * C, 109));
  const auto g0 = rounded_to_float(random_vector(size_t(V) * C, 110));
  Vec<int32_t> tok = to_view(tokens);
  auto full = [&](auto shape) {
    Vec<float> dwte = to_view<float>(g0), dwpe("dwpe", size_t(seq) * C);
    embedding_backward<float, decltype(shape)::value>(dwte, dwpe, tok, to_view<float>(R), batch, seq, C);
    return to_host(dwte);
  };
  const auto thread = full(RowShapeTag<RowShape::Thread>{}), team = full(RowShapeTag<RowShape::Team>{});
  EXPECT_EQ(thread, team);
  std::vector<double> ref = g0;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) ref[size_t(tokens[n]) * C + c] += R[size_t(n) * C + c];
  EXPECT_LT(rel_error(thread, ref), kFloatTol);
  for_each_row_shape([&](auto shape) {
    std::vector<double> joined;
    for (int begin = 0; begin < V; begin += 3) {
      const std::vector<double> g0_slice(g0.begin() + size_t(begin) * C, g0.begin() + size_t(begin + 3) * C);
      Vec<float> slice = to_view<float>(g0_slice);
      embedding_backward_tokens_sharded<float, decltype(shape)::value>(slice, tok, to_view<float>(R), batch, seq, C,
                                                                       begin, 3);
      const auto h = to_host(slice);
      joined.insert(joined.end(), h.begin(), h.end());
    }
    EXPECT_EQ(joined, thread);
  });
}

}  // namespace
}  // namespace strata
