#pragma once
// Multi-head causal self-attention on a fused qkv tensor, tiled over queries so that no T x T score matrix is
// held: a tile of `block` queries needs the scores against keys 0 .. (its last query) only, computed by GEMMs
// through the dispatch (heads batched with strides straight into qkv: no permute copies), the causal softmax
// (kernels/causal_softmax.hpp) in place, and the weighted sum. Nothing but qkv is kept for backward: it recomputes
// each tile's scores and probabilities (the same GEMMs and kernel, so the same values) instead of storing
// B x H x T x T of them. Scratch is one tile's scores and their gradient: 2 x H x block x T.
#include <algorithm>

#include "core/error.hpp"
#include "kernels/causal_softmax.hpp"
#include "kernels/dropout.hpp"
#include "kernels/gemm.hpp"

namespace strata {

// Queries per tile. On the host 128: more tiles skip more of the masked scores (small config, T = 256: tiles of 128
// trained at 1.25x PyTorch, one tile of 256 at 1.20x, Zen 4) and GEMMs of 128 rows still run at full speed. On a GPU
// each tile costs five GEMM launches per sequence, so tiles are as large as a tile's scores (H x block x T) allow
// within 4 Mi elements, in multiples of 64: 256 queries at T = 1024 with 16 heads (16 MiB of fp32 scores). Never more
// than T.
inline int default_query_block(int seq, int heads) {
  if (!kDeviceMemory) return std::min(seq, 128);
  const int64_t budget = int64_t(1) << 22;
  const int64_t fit = budget / (int64_t(std::max(heads, 1)) * std::max(seq, 1)) / 64 * 64;
  return int(std::min<int64_t>(std::max<int64_t>(fit, 64), seq));
}

struct AttentionShape {
  int batch, seq, channels, heads;
  int query_block = 0;  // queries per tile; 0 = default_query_block
  int head_dim() const { return channels / heads; }
  int block() const { return query_block > 0 ? std::min(query_block, seq) : default_query_block(seq, heads); }
};

// Elements of the scratch attention_forward and attention_backward take.
inline size_t attention_scratch_size(const AttentionShape& s) {
  return 2 * size_t(s.heads) * size_t(s.block()) * size_t(s.seq);
}

namespace attention_detail {

// One query tile of one sequence: queries [first, first + rows), keys [0, keys).
struct Tile {
  int first, rows, keys;
  CausalRows causal(int heads) const { return {int64_t(heads) * rows, rows, first, keys}; }
};

// S_h[rows, keys] = q_h k_h^T * scale into scores[H, rows, keys], then the causal softmax in place: P.
template <class T>
void tile_probabilities(const Vec<T>& scores, const T* q_seq, const Tile& t, int C, int H, int D, T scale) {
  gemm_strided_batched<T>({Trans::No, Trans::Yes, t.rows, t.keys, D, 3 * C, 3 * C, t.keys}, scale,
                          q_seq + int64_t(t.first) * 3 * C, D, q_seq + C, D, T(0), scores.data(),
                          int64_t(t.rows) * t.keys, H);
  causal_softmax_forward<T>(scores, t.causal(H));
}

}  // namespace attention_detail

// out[B, T, C] from qkv[B, T, 3C] (q | k | v, head h in columns h*D .. h*D+D-1 of each).
// scratch[attention_scratch_size(s)]. With an active `dropout`, the probabilities are dropped (kernels/dropout.hpp)
// before they weight the values.
template <class T>
void attention_forward(const Vec<T>& out, const Vec<T>& scratch, const Vec<T>& qkv, const AttentionShape& s,
                       const AttentionDropout& dropout = {}) {
  using attention_detail::Tile;
  const int Tn = s.seq, C = s.channels, H = s.heads, D = s.head_dim(), Q = s.block();
  STRATA_CHECK(scratch.extent(0) >= attention_scratch_size(s), "attention: scratch of {} elements, {} needed",
               scratch.extent(0), attention_scratch_size(s));
  const T scale = T(1) / std::sqrt(T(D));
  for (int b = 0; b < s.batch; ++b) {
    const T* q = qkv.data() + int64_t(b) * Tn * 3 * C;
    for (int first = 0; first < Tn; first += Q) {
      const int rows = std::min(Q, Tn - first);
      const Tile t{first, rows, first + rows};
      attention_detail::tile_probabilities(scratch, q, t, C, H, D, scale);
      if (dropout.active()) dropout_attention_tile<T>(scratch, dropout, b, H, rows, t.keys, first, Tn);
      // out_h[rows, D] = P_h[rows, keys] v_h[keys, D]
      gemm_strided_batched<T>({Trans::No, Trans::No, rows, D, t.keys, t.keys, 3 * C, C}, T(1), scratch.data(),
                              int64_t(rows) * t.keys, q + 2 * C, D, T(0), out.data() + (int64_t(b) * Tn + first) * C, D,
                              H);
    }
  }
}

// dqkv[B, T, 3C] (overwritten) from dout[B, T, C] and qkv. scratch[attention_scratch_size(s)].
// Tiles run from the last (all keys: its dk, dv contributions overwrite) to the first (added), so dk and dv are
// summed in one fixed order. `dropout` must be the forward's: its masks are drawn again. With dropped probabilities
// P' = M P / (1 - p): dv = P'^T dout, dP = M (dout v^T) / (1 - p), and the softmax backward takes P and dP.
template <class T>
void attention_backward(const Vec<T>& dqkv, const Vec<T>& scratch, const Vec<T>& dout, const Vec<T>& qkv,
                        const AttentionShape& s, const AttentionDropout& dropout = {}) {
  using attention_detail::Tile;
  const int Tn = s.seq, C = s.channels, H = s.heads, D = s.head_dim(), Q = s.block();
  STRATA_CHECK(scratch.extent(0) >= attention_scratch_size(s), "attention: scratch of {} elements, {} needed",
               scratch.extent(0), attention_scratch_size(s));
  const T scale = T(1) / std::sqrt(T(D));
  const size_t half = size_t(H) * Q * Tn;
  const Vec<T> probs(scratch.data(), half), dscores(scratch.data() + half, half);
  const int tiles = (Tn + Q - 1) / Q;
  for (int b = 0; b < s.batch; ++b) {
    const T* q = qkv.data() + int64_t(b) * Tn * 3 * C;
    const T* k = q + C;
    const T* v = q + 2 * C;
    T* dq = dqkv.data() + int64_t(b) * Tn * 3 * C;
    T* dk = dq + C;
    T* dv = dq + 2 * C;
    const T* g_seq = dout.data() + int64_t(b) * Tn * C;
    for (int tile = tiles - 1; tile >= 0; --tile) {
      const int first = tile * Q, rows = std::min(Q, Tn - first);
      const Tile t{first, rows, first + rows};
      const T* g = g_seq + int64_t(first) * C;
      const int64_t tile_elems = int64_t(rows) * t.keys;
      const T accumulate = tile == tiles - 1 ? T(0) : T(1);
      attention_detail::tile_probabilities(probs, q, t, C, H, D, scale);
      // dP_h[rows, keys] = dout_h v_h^T
      gemm_strided_batched<T>({Trans::No, Trans::Yes, rows, t.keys, D, C, 3 * C, t.keys}, T(1), g, D, v, D, T(0),
                              dscores.data(), tile_elems, H);
      if (dropout.active()) {
        // The dropped probabilities' gradient is masked like them; the softmax backward needs the undropped P,
        // after which P is dropped in place for dv.
        dropout_attention_tile<T>(dscores, dropout, b, H, rows, t.keys, first, Tn);
        causal_softmax_backward<T>(dscores, probs, t.causal(H), scale);
        dropout_attention_tile<T>(probs, dropout, b, H, rows, t.keys, first, Tn);
      }
      // dv_h[keys, D] (+)= P_h^T dout_h
      gemm_strided_batched<T>({Trans::Yes, Trans::No, t.keys, D, rows, t.keys, C, 3 * C}, T(1), probs.data(),
                              tile_elems, g, D, accumulate, dv, D, H);
      if (!dropout.active()) causal_softmax_backward<T>(dscores, probs, t.causal(H), scale);
      // dq_h[rows, D] = dS_h k_h ; dk_h[keys, D] (+)= dS_h^T q_h
      gemm_strided_batched<T>({Trans::No, Trans::No, rows, D, t.keys, t.keys, 3 * C, 3 * C}, T(1), dscores.data(),
                              tile_elems, k, D, T(0), dq + int64_t(first) * 3 * C, D, H);
      gemm_strided_batched<T>({Trans::Yes, Trans::No, t.keys, D, rows, t.keys, 3 * C, 3 * C}, T(1), dscores.data(),
                              tile_elems, q + int64_t(first) * 3 * C, D, accumulate, dk, D, H);
    }
  }
}

}  // namespace strata
