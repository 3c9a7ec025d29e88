// TensorParallel (parallel/tensor_parallel.hpp) on real groups: MPI_COMM_WORLD split into tensor-parallel groups
// of 2 and 4 consecutive ranks where the world size allows (and groups of one, and no group at all). Every
// forward/backward pair runs on this rank's slice of global tensors (cut as ShardMap cuts the parameters: rows of
// W for column-parallel, columns for row-parallel, vocabulary blocks of wte's rows) and must give this rank's
// part of what the plain one-rank kernels compute on the whole tensors: to 1e-12 (double) / 1e-5 (float)
// relative, and bit for bit on a group of one.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "comm/communicator.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/distillation.hpp"
#include "kernels/embedding.hpp"
#include "kernels/gemm.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/shard_map.hpp"
#include "parallel/tensor_parallel.hpp"
#include "unit/kernels/test_util.hpp"

namespace strata {
namespace {

using testing::random_tokens;
using testing::random_vector;
using testing::rel_error;
using testing::to_host;
using testing::to_view;
using Host = std::vector<double>;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

// Runs f(group, size, label) for: no group, a group of one (a split of MPI_COMM_WORLD), and groups of 2 and 4
// consecutive world ranks where the world size divides. Every rank makes the same calls (the splits are
// collective).
template <class F>
void for_each_group(F&& f) {
  f(static_cast<Communicator*>(nullptr), 1, std::string("no group"));
  for (int g : {1, 2, 4}) {
    if (world_size() % g != 0) continue;
    MPI_Comm split;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank() / g, world_rank(), &split);
    auto comm = MpiCommunicator::adopt(split);
    ASSERT_EQ(comm->size(), g);
    ASSERT_EQ(comm->rank(), world_rank() % g);
    f(static_cast<Communicator*>(comm.get()), g, "group of " + std::to_string(g));
  }
}

// This rank's part of a global tensor, element j being global[shard.global_index(j)].
Host shard_of(const Host& global, const ShardMap& shard) {
  Host local(size_t(shard.rows * shard.cols));
  for (size_t j = 0; j < local.size(); ++j) local[j] = global[size_t(shard.global_index(int64_t(j)))];
  return local;
}
// Rows [r * rows/g, (r+1) * rows/g) of a [rows, cols] matrix (a rank's output features / vocabulary block).
ShardMap row_block(int64_t rows, int64_t cols, int r, int g) { return ShardMap{0, 1, r, g, rows / g, cols}; }
// Columns [r * cols/g, (r+1) * cols/g) of a [rows, cols] matrix.
ShardMap col_block(int64_t rows, int64_t cols, int r, int g) { return ShardMap{1, 1, r, g, rows, cols / g}; }

Host cols_of(const Host& m, int64_t rows, int64_t cols, int r, int g) {
  return shard_of(m, col_block(rows, cols, r, g));
}

template <class T>
void expect_part(const Vec<T>& got, const Host& expected, int g, const std::string& what) {
  const Host h = to_host(got);
  if (g == 1) {
    EXPECT_EQ(h, expected) << what << ": a group of one must give the plain kernel's result bit for bit";
  } else {
    EXPECT_LE(rel_error(h, expected), tol<T>()) << what;
  }
}

template <class T>
class TensorParallelPairs : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(TensorParallelPairs, Types);

TEST(TensorParallelSlices, ShardMapBlocksAreTheContiguousRowAndColumnBlocks) {
  const int64_t R = 8, C = 6;
  Host m(size_t(R * C));
  for (size_t i = 0; i < m.size(); ++i) m[i] = double(i);
  for (int g : {1, 2}) {
    for (int r = 0; r < g; ++r) {
      const Host rows = shard_of(m, row_block(R, C, r, g)), cols = shard_of(m, col_block(R, C, r, g));
      for (int64_t i = 0; i < R / g; ++i)
        for (int64_t c = 0; c < C; ++c) ASSERT_EQ(rows[size_t(i * C + c)], m[size_t((r * R / g + i) * C + c)]);
      for (int64_t i = 0; i < R; ++i)
        for (int64_t c = 0; c < C / g; ++c) ASSERT_EQ(cols[size_t(i * C / g + c)], m[size_t(i * C + r * C / g + c)]);
    }
  }
}

// ---- Column-parallel linear: W [O/g, I] (rows of W), b [O/g]; y [N, O/g]; dx summed over the group.
template <class T>
void plain_column_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int N, int I, int O) {
  if (b.extent(0) > 0)
    linear_forward<T>(y, x, w, b, N, I, O);
  else
    gemm<T>({Trans::No, Trans::Yes, N, O, I, I, I, O}, T(1), x.data(), w.data(), T(0), y.data());
}
template <class T>
void plain_column_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                           const Vec<T>& w, int N, int I, int O) {
  if (db.extent(0) > 0) {
    linear_backward<T>(dx, dw, db, dy, x, w, N, I, O);
  } else {
    gemm<T>({Trans::No, Trans::No, N, I, O, O, I, I}, T(1), dy.data(), w.data(), T(0), dx.data());
    gemm<T>({Trans::Yes, Trans::No, O, I, N, O, I, I}, T(1), dy.data(), x.data(), T(1), dw.data());
  }
}

TYPED_TEST(TensorParallelPairs, ColumnLinearForwardAndBackward) {
  using T = TypeParam;
  const int N = 5, I = 6, O = 8;
  const Host x = random_vector(size_t(N * I), 11), w = random_vector(size_t(O * I), 12), b = random_vector(O, 13);
  const Host dy = random_vector(size_t(N * O), 14), dw0 = random_vector(size_t(O * I), 15), db0 = random_vector(O, 16);
  for (bool bias : {true, false}) {
    const std::string with = bias ? " with bias" : " without bias";
    Vec<T> y("y", size_t(N * O)), dx("dx", size_t(N * I));
    const Vec<T> dw = to_view<T>(dw0), db = bias ? to_view<T>(db0) : Vec<T>();
    plain_column_forward<T>(y, to_view<T>(x), to_view<T>(w), bias ? to_view<T>(b) : Vec<T>(), N, I, O);
    plain_column_backward<T>(dx, dw, db, to_view<T>(dy), to_view<T>(x), to_view<T>(w), N, I, O);
    const Host y_full = to_host(y), dx_full = to_host(dx), dw_full = to_host(dw), db_full = bias ? to_host(db) : Host();
    for_each_group([&](Communicator* group, int g, const std::string& label) {
      TensorParallel<T> tp(group);
      ASSERT_EQ(tp.size(), g);
      const int r = tp.rank(), Ol = O / g;
      const ShardMap w_shard = row_block(O, I, r, g), b_shard = row_block(O, 1, r, g);
      const Vec<T> wl = to_view<T>(shard_of(w, w_shard)), bl = bias ? to_view<T>(shard_of(b, b_shard)) : Vec<T>();
      const Vec<T> yl("y", size_t(N * Ol));
      tp.column_linear_forward(yl, to_view<T>(x), wl, bl, N, I, Ol);
      expect_part(yl, cols_of(y_full, N, O, r, g), g, label + with + ": y");
      // Backward from this rank's columns of dy; dW and db accumulate into what they held; dx is overwritten.
      const Vec<T> dxl = to_view<T>(random_vector(size_t(N * I), 99)), dwl = to_view<T>(shard_of(dw0, w_shard));
      const Vec<T> dbl = bias ? to_view<T>(shard_of(db0, b_shard)) : Vec<T>();
      tp.column_linear_backward(dxl, dwl, dbl, to_view<T>(cols_of(dy, N, O, r, g)), to_view<T>(x), wl, N, I, Ol);
      expect_part(dxl, dx_full, g, label + with + ": dx (summed over the group)");
      expect_part(dwl, shard_of(dw_full, w_shard), g, label + with + ": dW");
      if (bias) expect_part(dbl, shard_of(db_full, b_shard), g, label + with + ": db");
    });
  }
}

// ---- Row-parallel linear: W [O, I/g] (columns of W), x [N, I/g]; b [O] and the residual replicated.
TYPED_TEST(TensorParallelPairs, RowLinearForwardWithResidualAndBackward) {
  using T = TypeParam;
  const int N = 5, I = 8, O = 6;
  const Host x = random_vector(size_t(N * I), 21), w = random_vector(size_t(O * I), 22), b = random_vector(O, 23);
  const Host residual = random_vector(size_t(N * O), 24), dy = random_vector(size_t(N * O), 25);
  const Host dw0 = random_vector(size_t(O * I), 26), db0 = random_vector(O, 27);
  const Vec<T> residual_v = to_view<T>(residual);
  Vec<T> y("y", size_t(N * O)), dx("dx", size_t(N * I));
  const Vec<T> dw = to_view<T>(dw0), db = to_view<T>(db0);
  linear_forward<T>(y, to_view<T>(x), to_view<T>(w), to_view<T>(b), N, I, O, &residual_v);
  linear_backward<T>(dx, dw, db, to_view<T>(dy), to_view<T>(x), to_view<T>(w), N, I, O);
  const Host y_full = to_host(y), dx_full = to_host(dx), dw_full = to_host(dw), db_full = to_host(db);
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Il = I / g;
    const ShardMap w_shard = col_block(O, I, r, g);
    const Vec<T> wl = to_view<T>(shard_of(w, w_shard)), xl = to_view<T>(cols_of(x, N, I, r, g));
    const Vec<T> yl = to_view<T>(random_vector(size_t(N * O), 98));
    tp.row_linear_forward(yl, xl, wl, to_view<T>(b), N, Il, O, to_view<T>(residual));
    expect_part(yl, y_full, g, label + ": y = residual + b + sum over the group of x W^T");
    const Vec<T> dxl = to_view<T>(random_vector(size_t(N * Il), 97)), dwl = to_view<T>(shard_of(dw0, w_shard));
    const Vec<T> dbl = to_view<T>(db0);
    tp.row_linear_backward(dxl, dwl, dbl, to_view<T>(dy), xl, wl, N, Il, O);
    expect_part(dxl, cols_of(dx_full, N, I, r, g), g, label + ": dx (this rank's input features)");
    expect_part(dwl, shard_of(dw_full, w_shard), g, label + ": dW");
    expect_part(dbl, db_full, g, label + ": db (whole, on every rank)");
  });
}

// ---- Vocabulary-parallel embedding: wte [V/g, C] (a block of rows), wpe [Tmax, C] replicated.
TYPED_TEST(TensorParallelPairs, VocabEmbeddingForwardAndBackward) {
  using T = TypeParam;
  const int B = 2, S = 5, C = 3, V = 8, Tmax = 6;
  // Every token id at least once, so that every vocabulary block of 1, 2 and 4 ranks is looked up.
  const std::vector<int32_t> tokens = {3, 7, 0, 5, 2, 6, 1, 4, 7, 0};
  const Vec<int32_t> tokens_v = to_view(tokens);
  const Host wte = random_vector(size_t(V * C), 31), wpe = random_vector(size_t(Tmax * C), 32);
  const Host dout = random_vector(size_t(B * S * C), 33), dwte0 = random_vector(size_t(V * C), 34),
             dwpe0 = random_vector(size_t(Tmax * C), 35);
  Vec<T> out("out", size_t(B * S * C));
  const Vec<T> dwte = to_view<T>(dwte0), dwpe = to_view<T>(dwpe0);
  embedding_forward<T>(out, tokens_v, to_view<T>(wte), to_view<T>(wpe), B, S, C);
  embedding_backward<T>(dwte, dwpe, tokens_v, to_view<T>(dout), B, S, C);
  const Host out_full = to_host(out), dwte_full = to_host(dwte), dwpe_full = to_host(dwpe);
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Vl = V / g;
    const ShardMap wte_shard = row_block(V, C, r, g);
    const Vec<T> outl = to_view<T>(random_vector(size_t(B * S * C), 96));
    tp.vocab_embedding_forward(outl, tokens_v, to_view<T>(shard_of(wte, wte_shard)), to_view<T>(wpe), B, S, C, Vl);
    expect_part(outl, out_full, g, label + ": embedding output (whole, on every rank)");
    const Vec<T> dwtel = to_view<T>(shard_of(dwte0, wte_shard)), dwpel = to_view<T>(dwpe0);
    tp.vocab_embedding_backward(dwtel, dwpel, tokens_v, to_view<T>(dout), B, S, C, Vl);
    expect_part(dwtel, shard_of(dwte_full, wte_shard), g, label + ": dwte (this rank's vocabulary block)");
    expect_part(dwpel, dwpe_full, g, label + ": dwpe");
  });
}

// ---- Vocabulary-parallel cross-entropy: logits [N, V/g] (a block of columns).
TYPED_TEST(TensorParallelPairs, VocabCrossEntropyForwardAndBackward) {
  using T = TypeParam;
  const int N = 6, V = 8;
  // Targets in every vocabulary block of 1, 2 and 4 ranks (blocks of 2: {0,1} {2,3} {4,5} {6,7}).
  const std::vector<int32_t> targets = {0, 3, 4, 7, 2, 5};
  const Vec<int32_t> targets_v = to_view(targets);
  Host logits = random_vector(size_t(N * V), 41, -3, 3);
  logits[1 * V + 6] = 30;   // a row whose maximum is far above the rest, in another block than its target
  logits[4 * V + 2] = -25;  // a target far below the row's maximum
  const T dloss = T(1.0 / N);
  Vec<T> losses("losses", N), lse("lse", N);
  const Vec<T> dlogits = to_view<T>(logits);
  cross_entropy_forward<T>(losses, lse, dlogits, targets_v, N, V);
  cross_entropy_backward<T>(dlogits, lse, targets_v, N, V, dloss);
  const Host losses_full = to_host(losses), lse_full = to_host(lse), dlogits_full = to_host(dlogits);
  // The plain kernel itself against the closed form in double (one check of the reference).
  for (int n = 0; n < N; ++n) {
    double mx = logits[size_t(n * V)], s = 0;
    for (int v = 0; v < V; ++v) mx = std::max(mx, logits[size_t(n * V + v)]);
    for (int v = 0; v < V; ++v) s += std::exp(logits[size_t(n * V + v)] - mx);
    const double expected = mx + std::log(s) - logits[size_t(n * V + targets[size_t(n)])];
    EXPECT_NEAR(losses_full[size_t(n)], expected, (tol<T>() * std::max(1.0, std::abs(expected)))) << "row " << n;
  }
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Vl = V / g;
    const Vec<T> logitsl = to_view<T>(cols_of(logits, N, V, r, g));
    const Vec<T> lossesl = to_view<T>(random_vector(N, 95)), lsel = to_view<T>(random_vector(N, 94));
    tp.vocab_cross_entropy_forward(lossesl, lsel, logitsl, targets_v, N, Vl);
    expect_part(lossesl, losses_full, g, label + ": losses (full-vocabulary cross-entropy)");
    expect_part(lsel, lse_full, g, label + ": log-sum-exp");
    tp.vocab_cross_entropy_backward(logitsl, lsel, targets_v, N, Vl, dloss);
    expect_part(logitsl, cols_of(dlogits_full, N, V, r, g), g, label + ": dlogits (this rank's columns)");
  });
}

// Distillation over vocabulary-parallel logits: each rank's columns of the student's and the teacher's logits give the
// losses of the whole vocabulary and this rank's columns of the soft gradient, as the one-rank kernels on whole rows.
TYPED_TEST(TensorParallelPairs, VocabDistillationEqualsTheWholeVocabulary) {
  using T = TypeParam;
  const int N = 5, V = 8;
  const T temperature = T(2.5), alpha = T(0.7), scale = T(1.0 / N);
  Host logits = random_vector(size_t(N * V), 61, -3, 3), teacher = random_vector(size_t(N * V), 62, -4, 4);
  logits[2 * V + 7] = 25;   // a row whose student maximum sits in the last block
  teacher[3 * V + 0] = 30;  // and a teacher maximum in the first
  const Host hard = random_vector(N, 63, 0.5, 2.0);
  const Vec<T> losses = to_view<T>(hard), soft("soft", size_t(N * V));
  distillation_forward<T>(losses, to_view<T>(logits), to_view<T>(teacher), N, V, temperature, alpha);
  distillation_soft_gradient<T>(soft, to_view<T>(logits), to_view<T>(teacher), N, V, temperature, alpha, scale);
  const Host losses_full = to_host(losses), soft_full = to_host(soft);
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Vl = V / g;
    const Vec<T> logitsl = to_view<T>(cols_of(logits, N, V, r, g)), teacherl = to_view<T>(cols_of(teacher, N, V, r, g));
    const Vec<T> lossesl = to_view<T>(hard), stats("stats", 4 * size_t(N)), softl("soft", size_t(N * Vl));
    tp.vocab_distillation_forward(lossesl, stats, logitsl, teacherl, N, Vl, temperature, alpha);
    EXPECT_LE(rel_error(to_host(lossesl), losses_full), tol<T>()) << label << ": losses";
    tp.vocab_distillation_soft_gradient(softl, stats, logitsl, teacherl, N, Vl, temperature, alpha, scale);
    EXPECT_LE(rel_error(to_host(softl), cols_of(soft_full, N, V, r, g)), tol<T>()) << label << ": soft gradient";
  });
}

// ---- The two mappings and the row gather.
TYPED_TEST(TensorParallelPairs, CopyBackwardAndReduceForwardSumOverTheGroup) {
  using T = TypeParam;
  const size_t n = 37;
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    // Small integers times 1/4: every sum is exact in float.
    auto mine = [&](int world, size_t i) { return double(world + 1) * double(i % 13 + 1) * 0.25; };
    Host values(n), expected(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      values[i] = mine(world_rank(), i);
      if (!group)
        expected[i] = values[i];
      else
        for (int q = world_rank() / g * g; q < world_rank() / g * g + g; ++q) expected[i] += mine(q, i);
    }
    const Vec<T> grad = to_view<T>(values), x = to_view<T>(values);
    tp.copy_backward(grad);
    tp.reduce_forward(x);
    EXPECT_EQ(to_host(grad), expected) << label << ": copy_backward";
    EXPECT_EQ(to_host(x), expected) << label << ": reduce_forward";
  });
}

TYPED_TEST(TensorParallelPairs, GatherRowGivesTheWholeRowOnEveryRank) {
  using T = TypeParam;
  const int N = 3, V = 8;
  Host logits = random_vector(size_t(N * V), 51);
  for (auto& v : logits) v = double(T(v));  // representable in T: the gathered row is exact
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const Vec<T> local = to_view<T>(cols_of(logits, N, V, tp.rank(), g));
    for (int row = 0; row < N; ++row)
      EXPECT_EQ(tp.gather_row(local, row, V / g), Host(logits.begin() + row * V, logits.begin() + (row + 1) * V))
          << label << ": row " << row;
  });
}

// ---- Convolutions split over channels. Column-parallel: W [O/g, C, k, k] (rows of the [O, C*k*k] view), b [O/g],
// whole input; output channels [r*O/g, (r+1)*O/g); dx summed over the group. Row-parallel: W [O, C/g, k, k]
// (column blocks of the view), input channels [r*C/g, ...); outputs summed (+ b once); dx this rank's channels.
template <class T>
struct ConvCase {
  int B = 3, C = 4, H = 7, W = 6, O = 8, k = 3, stride = 2, pad = 1;
  Conv2dShape whole() const { return Conv2dShape{B, C, H, W, O, k, k, stride, pad}; }
  Host x = random_vector(size_t(B * C * H * W), 501), w = random_vector(size_t(O * C * k * k), 502, -0.5, 0.5);
  Host b = random_vector(size_t(O), 503), dy;
  ConvCase() { dy = random_vector(size_t(whole().output_size()), 504); }
};

// Channels [c0, c0 + n) of an NCHW tensor [B, C, P].
Host channels_of(const Host& t, int64_t B, int64_t C, int64_t P, int64_t c0, int64_t n) {
  Host out;
  for (int64_t b = 0; b < B; ++b) out.insert(out.end(), t.begin() + (b * C + c0) * P, t.begin() + (b * C + c0 + n) * P);
  return out;
}

TYPED_TEST(TensorParallelPairs, ColumnParallelConvolution) {
  using T = TypeParam;
  const ConvCase<T> d;
  const Conv2dShape full = d.whole();
  const int64_t P = int64_t(full.out_h()) * full.out_w();
  // The plain convolution on the whole tensors.
  Vec<T> y("y", size_t(full.output_size())), dx("dx", size_t(full.input_size())), dw("dw", d.w.size()),
      db("db", d.b.size()), ws("ws", conv2d_workspace_size(full));
  const Vec<T> x = to_view<T>(d.x), w = to_view<T>(d.w), b = to_view<T>(d.b), dy = to_view<T>(d.dy);
  conv2d_forward<T>(y, x, w, b, full, ws);
  conv2d_backward<T>(dx, dw, db, dy, x, w, full, ws);
  const Host y_all = to_host(y), dx_all = to_host(dx), dw_all = to_host(dw), db_all = to_host(db);
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Ol = d.O / g;
    Conv2dShape s = full;
    s.out_channels = Ol;
    const ShardMap wm = row_block(d.O, int64_t(d.C) * d.k * d.k, r, g), bm = row_block(d.O, 1, r, g);
    Vec<T> yl("yl", size_t(s.output_size())), dxl("dxl", size_t(s.input_size())),
        dwl("dwl", size_t(Ol) * d.C * d.k * d.k), dbl("dbl", size_t(Ol)), wsl("wsl", conv2d_workspace_size(s));
    const Vec<T> wl = to_view<T>(shard_of(d.w, wm)), bl = to_view<T>(shard_of(d.b, bm));
    tp.column_conv2d_forward(yl, x, wl, bl, s, wsl);
    expect_part<T>(yl, channels_of(y_all, d.B, d.O, P, int64_t(r) * Ol, Ol), g, label + ": column conv y");
    tp.column_conv2d_backward(dxl, dwl, dbl, to_view<T>(channels_of(d.dy, d.B, d.O, P, int64_t(r) * Ol, Ol)), x, wl, s,
                              wsl);
    expect_part<T>(dxl, dx_all, g, label + ": column conv dx (summed)");
    expect_part<T>(dwl, shard_of(dw_all, wm), g, label + ": column conv dW");
    expect_part<T>(dbl, shard_of(db_all, bm), g, label + ": column conv db");
  });
}

TYPED_TEST(TensorParallelPairs, RowParallelConvolution) {
  using T = TypeParam;
  const ConvCase<T> d;
  const Conv2dShape full = d.whole();
  const int64_t HW = int64_t(d.H) * d.W;
  Vec<T> y("y", size_t(full.output_size())), dx("dx", size_t(full.input_size())), dw("dw", d.w.size()),
      db("db", d.b.size()), ws("ws", conv2d_workspace_size(full));
  const Vec<T> x = to_view<T>(d.x), w = to_view<T>(d.w), b = to_view<T>(d.b), dy = to_view<T>(d.dy);
  conv2d_forward<T>(y, x, w, b, full, ws);
  conv2d_backward<T>(dx, dw, db, dy, x, w, full, ws);
  const Host y_all = to_host(y), dx_all = to_host(dx), dw_all = to_host(dw), db_all = to_host(db);
  for_each_group([&](Communicator* group, int g, const std::string& label) {
    TensorParallel<T> tp(group);
    const int r = tp.rank(), Cl = d.C / g;
    Conv2dShape s = full;
    s.in_channels = Cl;
    const ShardMap wm = col_block(d.O, int64_t(d.C) * d.k * d.k, r, g);
    Vec<T> yl("yl", size_t(s.output_size())), dxl("dxl", size_t(s.input_size())),
        dwl("dwl", size_t(d.O) * Cl * d.k * d.k), dbl("dbl", size_t(d.O)), wsl("wsl", conv2d_workspace_size(s));
    const Vec<T> xl = to_view<T>(channels_of(d.x, d.B, d.C, HW, int64_t(r) * Cl, Cl)),
                 wl = to_view<T>(shard_of(d.w, wm));
    tp.row_conv2d_forward(yl, xl, wl, b, s, wsl);
    expect_part<T>(yl, y_all, g, label + ": row conv y (summed, bias once)");
    tp.row_conv2d_backward(dxl, dwl, dbl, dy, xl, wl, s, wsl);
    expect_part<T>(dxl, channels_of(dx_all, d.B, d.C, HW, int64_t(r) * Cl, Cl), g, label + ": row conv dx");
    expect_part<T>(dwl, shard_of(dw_all, wm), g, label + ": row conv dW");
    expect_part<T>(dbl, db_all, g, label + ": row conv db (the whole bias on every rank)");
  });
}

}  // namespace
}  // namespace strata
