#pragma once
// The elementwise part of one LSTM / GRU time step (torch.nn.LSTM / torch.nn.GRU conventions), for B rows.
// The GEMMs around them (input and hidden projections) are the layer's (src/nn/recurrent.hpp). Each kernel is
// parallel over rows, the hidden units of a row in a vector loop (one division per row, not per element); every
// element is written by its own iteration: no atomics.
// Float math through fastmath (vectorised exp, tanh with a small relative error near 0: cell states are often
// small); double through the library.
#include "kernels/common.hpp"
#include "kernels/fast_math.hpp"

namespace strata {

// B rows of a row-major tensor, row b starting at data(b * ld): one time step of a [B, T, W] tensor read and
// written in place (step_rows, ld = T*W) or a plain [B, W] one (all_rows). An empty view stands for all zeros
// (the initial state h_{-1} = c_{-1} = 0, or "nothing to add").
template <class T>
struct Rows {
  Vec<T> data;
  int64_t ld = 0;
  KOKKOS_INLINE_FUNCTION T& operator()(int64_t b, int64_t j) const { return data(b * ld + j); }
  bool empty() const { return data.extent(0) == 0; }
};

// Step t of v[B, steps, width].
template <class T>
Rows<T> step_rows(const Vec<T>& v, int t, int steps, int width) {
  const int64_t offset = int64_t(t) * width;
  return {view_of(v.data() + offset, v.extent(0) - offset), int64_t(steps) * width};
}

// All of v[B, width].
template <class T>
Rows<T> all_rows(const Vec<T>& v, int width) {
  return {v, width};
}

template <class T>
KOKKOS_INLINE_FUNCTION T sigmoid(T x) {
  return T(1) / (T(1) + fastmath::exp(-x));
}

// LSTM step. gates[B, 4H] holds the pre-activations (x W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T, blocks i, f, g, o)
// and is overwritten with the activations (i, f, o sigmoid; g tanh), which backward needs.
// c[B, H] = f * c_prev + i * g; h[B, H] = o * tanh(c). c_prev[B, H] (empty: zero).
template <class T>
void lstm_cell_forward(const Rows<T>& h, const Rows<T>& c, const Rows<T>& gates, const Rows<T>& c_prev, int batch,
                       int hidden) {
  const int64_t H = hidden;
  const bool has_prev = !c_prev.empty();
  Kokkos::parallel_for(
      "strata::recurrent_cells::lstm_forward", range(size_t(batch)), KOKKOS_LAMBDA(const int64_t b) {
        STRATA_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; ++j) {
          const T i = sigmoid(gates(b, j)), f = sigmoid(gates(b, H + j));
          const T g = fastmath::tanh_precise(gates(b, 2 * H + j)), o = sigmoid(gates(b, 3 * H + j));
          const T cp = has_prev ? c_prev(b, j) : T(0);
          const T ct = f * cp + i * g;
          gates(b, j) = i;
          gates(b, H + j) = f;
          gates(b, 2 * H + j) = g;
          gates(b, 3 * H + j) = o;
          c(b, j) = ct;
          h(b, j) = o * fastmath::tanh_precise(ct);
        }
      });
}

// LSTM step backward. The gradient reaching h_t is dh + dh_rec (the loss's, and the next step's through W_hh;
// dh_rec empty: zero); dc_next[B, H] is dL/dc_t through c_{t+1} (empty: zero). From the saved activated
// gates[B, 4H], c_prev[B, H] (empty: zero) and c[B, H], writes dgates[B, 4H] = dL/d(pre-activations)
// and dc_prev[B, H] = dL/dc_{t-1}. dc_prev may be the same memory as dc_next (each element reads then writes itself).
template <class T>
void lstm_cell_backward(const Rows<T>& dgates, const Rows<T>& dc_prev, const Rows<T>& dh, const Rows<T>& dh_rec,
                        const Rows<T>& dc_next, const Rows<T>& gates, const Rows<T>& c_prev, const Rows<T>& c,
                        int batch, int hidden) {
  const int64_t H = hidden;
  const bool has_rec = !dh_rec.empty(), has_dc = !dc_next.empty(), has_prev = !c_prev.empty();
  Kokkos::parallel_for(
      "strata::recurrent_cells::lstm_backward", range(size_t(batch)), KOKKOS_LAMBDA(const int64_t b) {
        STRATA_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; ++j) {
          const T i = gates(b, j), f = gates(b, H + j), g = gates(b, 2 * H + j), o = gates(b, 3 * H + j);
          const T tc = fastmath::tanh_precise(c(b, j));
          const T dht = dh(b, j) + (has_rec ? dh_rec(b, j) : T(0));
          const T dct = (has_dc ? dc_next(b, j) : T(0)) + dht * o * (T(1) - tc * tc);
          const T cp = has_prev ? c_prev(b, j) : T(0);
          dgates(b, j) = dct * g * i * (T(1) - i);
          dgates(b, H + j) = dct * cp * f * (T(1) - f);
          dgates(b, 2 * H + j) = dct * i * (T(1) - g * g);
          dgates(b, 3 * H + j) = dht * tc * o * (T(1) - o);
          dc_prev(b, j) = dct * f;
        }
      });
}

// GRU step. gates[B, 3H] holds the pre-activations r, z: x W_i^T + b_i + h_{t-1} W_h^T + b_h, and n's input
// side only: x W_in^T + b_in; hn[B, H] = h_{t-1} W_hn^T + b_hn is kept apart because r multiplies it.
// n = tanh(gates_n + r * hn); h[B, H] = (1 - z) * n + z * h_prev (empty: zero). gates is overwritten with the
// activations r, z, n, which backward needs (with hn and h_prev).
template <class T>
void gru_cell_forward(const Rows<T>& h, const Rows<T>& gates, const Rows<T>& hn, const Rows<T>& h_prev, int batch,
                      int hidden) {
  const int64_t H = hidden;
  const bool has_prev = !h_prev.empty();
  Kokkos::parallel_for(
      "strata::recurrent_cells::gru_forward", range(size_t(batch)), KOKKOS_LAMBDA(const int64_t b) {
        STRATA_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; ++j) {
          const T r = sigmoid(gates(b, j)), z = sigmoid(gates(b, H + j));
          const T n = fastmath::tanh_precise(gates(b, 2 * H + j) + r * hn(b, j));
          const T hp = has_prev ? h_prev(b, j) : T(0);
          gates(b, j) = r;
          gates(b, H + j) = z;
          gates(b, 2 * H + j) = n;
          h(b, j) = (T(1) - z) * n + z * hp;
        }
      });
}

// GRU step backward; the gradient reaching h_t is dh + dh_rec (dh_rec empty: zero). From the saved activated
// gates[B, 3H], hn[B, H] and h_prev[B, H] (empty: zero), writes
//   dgates_h[B, 3H] = the hidden side's pre-activation gradients: dL/d(r, z pre-activation) and dL/d(hn),
//   dn_x[B, H]      = dL/d(n's input-side pre-activation) (the input side's r, z gradients are dgates_h's),
//   dh_prev[B, H]   = dL/dh_{t-1} through the z * h_{t-1} term only (the layer adds dgates_h W_hh).
// dh_prev may be the same memory as dh_rec.
template <class T>
void gru_cell_backward(const Rows<T>& dgates_h, const Rows<T>& dn_x, const Rows<T>& dh_prev, const Rows<T>& dh,
                       const Rows<T>& dh_rec, const Rows<T>& gates, const Rows<T>& hn, const Rows<T>& h_prev, int batch,
                       int hidden) {
  const int64_t H = hidden;
  const bool has_rec = !dh_rec.empty(), has_prev = !h_prev.empty();
  Kokkos::parallel_for(
      "strata::recurrent_cells::gru_backward", range(size_t(batch)), KOKKOS_LAMBDA(const int64_t b) {
        STRATA_PRAGMA(omp simd)
        for (int64_t j = 0; j < H; ++j) {
          const T r = gates(b, j), z = gates(b, H + j), n = gates(b, 2 * H + j);
          const T hp = has_prev ? h_prev(b, j) : T(0);
          const T dht = dh(b, j) + (has_rec ? dh_rec(b, j) : T(0));
          const T dan = dht * (T(1) - z) * (T(1) - n * n);
          dgates_h(b, j) = dan * hn(b, j) * r * (T(1) - r);
          dgates_h(b, H + j) = dht * (hp - n) * z * (T(1) - z);
          dgates_h(b, 2 * H + j) = dan * r;
          dn_x(b, j) = dan;
          dh_prev(b, j) = dht * z;
        }
      });
}

// y[N, O] = b1[O] + b2[O] in columns o < both, b1 alone after: the bias rows the input projection GEMM adds
// onto (LSTM: both = 4H, b_ih + b_hh everywhere; GRU: both = 2H, n's b_hh is applied inside r * hn).
template <class T>
void broadcast_bias_pair(const Vec<T>& y, const Vec<T>& b1, const Vec<T>& b2, int64_t rows, int cols, int both) {
  const int64_t O = cols, S = both;
  Kokkos::parallel_for(
      "strata::recurrent_cells::broadcast_bias_pair", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        for (int64_t o = 0; o < O; ++o) y(n * O + o) = b1(o) + (o < S ? b2(o) : T(0));
      });
}

// rows(b, 0 .. width) = 0 for every b < batch.
template <class T>
void zero_rows(const Rows<T>& rows, int batch, int width) {
  const int64_t W = width;
  Kokkos::parallel_for(
      "strata::recurrent_cells::zero_rows", range(size_t(batch) * W),
      KOKKOS_LAMBDA(const int64_t e) { rows(e / W, e % W) = T(0); });
}

}  // namespace strata
