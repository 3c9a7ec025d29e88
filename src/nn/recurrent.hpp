#pragma once
// Whole-sequence LSTM and GRU layers (torch.nn.LSTM / torch.nn.GRU, batch_first, one layer, h0 = c0 = 0).
// Tensors are [B, T, *] row-major. The input projection of all steps is one GEMM; each step then adds its
// h_{t-1} W_hh^T straight into step t's rows (strided lda / ldc, no copies) and runs the cell kernel
// (kernels/recurrent_cells.hpp). Backward runs backpropagation through time keeping every step's gate
// gradients, so the weight gradients and dX are then whole-sequence GEMMs. Deterministic: fixed GEMM order,
// row sums for the biases, no atomics.
#include <cstddef>

#include "core/error.hpp"
#include "kernels/common.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "kernels/recurrent_cells.hpp"

namespace strata {

struct RecurrentShape {
  int batch, steps, input, hidden;
};

namespace detail {

template <class T>
void check_extent(const Vec<T>& v, size_t n, const char* what) {
  STRATA_CHECK(v.extent(0) == n, "recurrent: {} has {} elements, expected {}", what, v.extent(0), n);
}

// dW_hh[G, H] += sum over b and t >= 1 of dgates[b, t]^T h[b, t-1], as ONE GEMM over the B*T - 1 row pairs
// (dgates row r, h row r - 1): right everywhere but where r is step 0 of batch b (it would meet h[b-1, T-1]),
// so step 0's gate gradients, spent by now on dX, dW_ih and the biases, are zeroed first.
template <class T>
void hidden_weight_gradient(const Vec<T>& dw_hh, const Vec<T>& dgates, const Vec<T>& h, const RecurrentShape& s,
                            int gate_width) {
  const int B = s.batch, Tn = s.steps, H = s.hidden, G = gate_width;
  if (Tn < 2) return;  // h_{-1} = 0: no step sees a nonzero previous state
  zero_rows(step_rows(dgates, 0, Tn, G), B, G);
  gemm<T>({Trans::Yes, Trans::No, G, H, B * Tn - 1, G, H, H}, T(1), dgates.data() + G, h.data(), T(1), dw_hh.data());
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------------- LSTM
// Parameters: w_ih[4H, I], w_hh[4H, H], b_ih[4H], b_hh[4H]; gate blocks i, f, g, o.

// Workspace elements lstm_backward needs: dgates[B, T, 4H] | dh_rec[B, H] (dh_t through step t+1) | dc[B, H].
inline size_t lstm_workspace_size(const RecurrentShape& s) {
  return size_t(s.batch) * s.steps * 4 * s.hidden + 2 * size_t(s.batch) * s.hidden;
}

// h[B, T, H], c[B, T, H] and gates[B, T, 4H] (activated; saved for backward) from x[B, T, I].
template <class T>
void lstm_forward(const Vec<T>& h, const Vec<T>& c, const Vec<T>& gates, const Vec<T>& x, const Vec<T>& w_ih,
                  const Vec<T>& w_hh, const Vec<T>& b_ih, const Vec<T>& b_hh, const RecurrentShape& s) {
  const int B = s.batch, Tn = s.steps, I = s.input, H = s.hidden, G = 4 * H, BT = B * Tn;
  detail::check_extent(h, size_t(BT) * H, "h");
  detail::check_extent(c, size_t(BT) * H, "c");
  detail::check_extent(gates, size_t(BT) * G, "gates");
  detail::check_extent(x, size_t(BT) * I, "x");
  // gates = b_ih + b_hh + x W_ih^T for all steps at once
  broadcast_bias_pair(gates, b_ih, b_hh, BT, G, G);
  gemm<T>({Trans::No, Trans::Yes, BT, G, I, I, I, G}, T(1), x.data(), w_ih.data(), T(1), gates.data());
  for (int t = 0; t < Tn; ++t) {
    if (t > 0)  // gates[:, t] += h[:, t-1] W_hh^T
      gemm<T>({Trans::No, Trans::Yes, B, G, H, Tn * H, H, Tn * G}, T(1), h.data() + int64_t(t - 1) * H, w_hh.data(),
              T(1), gates.data() + int64_t(t) * G);
    lstm_cell_forward(step_rows(h, t, Tn, H), step_rows(c, t, Tn, H), step_rows(gates, t, Tn, G),
                      t > 0 ? step_rows(c, t - 1, Tn, H) : Rows<T>{}, B, H);
  }
}

// From dh[B, T, H] (dL/dh_t of every step; zero where a step's output is unused) and the forward's x, h, c,
// gates: dx[B, T, I] (overwritten; size 0 skips it), dw_ih, dw_hh, db_ih, db_hh (all +=).
// workspace: lstm_workspace_size(s) elements.
template <class T>
void lstm_backward(const Vec<T>& dx, const Vec<T>& dw_ih, const Vec<T>& dw_hh, const Vec<T>& db_ih, const Vec<T>& db_hh,
                   const Vec<T>& dh, const Vec<T>& x, const Vec<T>& h, const Vec<T>& c, const Vec<T>& gates,
                   const Vec<T>& w_ih, const Vec<T>& w_hh, const RecurrentShape& s, const Vec<T>& workspace) {
  const int B = s.batch, Tn = s.steps, I = s.input, H = s.hidden, G = 4 * H, BT = B * Tn;
  detail::check_extent(dh, size_t(BT) * H, "dh");
  detail::check_extent(gates, size_t(BT) * G, "gates");
  if (dx.extent(0) > 0) detail::check_extent(dx, size_t(BT) * I, "dx");
  STRATA_CHECK(workspace.extent(0) >= lstm_workspace_size(s), "lstm_backward: workspace has {} elements, needs {}",
               workspace.extent(0), lstm_workspace_size(s));
  const Vec<T> dgates = view_of(workspace.data(), size_t(BT) * G);
  const Vec<T> dh_rec = view_of(workspace.data() + size_t(BT) * G, size_t(B) * H);
  const Vec<T> dc = view_of(workspace.data() + size_t(BT) * G + size_t(B) * H, size_t(B) * H);

  // Backpropagation through time: dc is carried in place, dh_rec = dgates_t W_hh feeds step t-1.
  for (int t = Tn - 1; t >= 0; --t) {
    const bool last = t == Tn - 1;
    lstm_cell_backward(step_rows(dgates, t, Tn, G), all_rows(dc, H), step_rows(dh, t, Tn, H),
                       last ? Rows<T>{} : all_rows(dh_rec, H), last ? Rows<T>{} : all_rows(dc, H),
                       step_rows(gates, t, Tn, G), t > 0 ? step_rows(c, t - 1, Tn, H) : Rows<T>{},
                       step_rows(c, t, Tn, H), B, H);
    if (t > 0)
      gemm<T>({Trans::No, Trans::No, B, H, G, Tn * G, H, H}, T(1), dgates.data() + int64_t(t) * G, w_hh.data(), T(0),
              dh_rec.data());
  }
  // Input side and biases over all B*T rows at once.
  if (dx.extent(0) > 0)
    gemm<T>({Trans::No, Trans::No, BT, I, G, G, I, I}, T(1), dgates.data(), w_ih.data(), T(0), dx.data());
  gemm<T>({Trans::Yes, Trans::No, G, I, BT, G, I, I}, T(1), dgates.data(), x.data(), T(1), dw_ih.data());
  sum_rows(db_ih, dgates, BT, G);
  sum_rows(db_hh, dgates, BT, G);
  detail::hidden_weight_gradient(dw_hh, dgates, h, s, G);  // last: zeroes step 0 of dgates
}

// ----------------------------------------------------------------------------------------------------------- GRU
// Parameters: w_ih[3H, I], w_hh[3H, H], b_ih[3H], b_hh[3H]; gate blocks r, z, n.

// Workspace elements gru_backward needs: dgates_h[B, T, 3H] (hidden side: r, z pre-activations and hn) |
// dn_x[B, T, H] (n's input-side pre-activation) | dh_rec[B, H] | dbias[3H].
inline size_t gru_workspace_size(const RecurrentShape& s) {
  const size_t BT = size_t(s.batch) * s.steps, H = s.hidden;
  return BT * 4 * H + size_t(s.batch) * H + 3 * H;
}

// h[B, T, H], gates[B, T, 3H] (activated r, z, n) and hn[B, T, H] (h_{t-1} W_hn^T + b_hn) from x[B, T, I];
// gates and hn are saved for backward. Each step runs two GEMMs (r, z into gates; n into hn: r multiplies
// only the hidden part of n, so it cannot be summed with the input part).
template <class T>
void gru_forward(const Vec<T>& h, const Vec<T>& gates, const Vec<T>& hn, const Vec<T>& x, const Vec<T>& w_ih,
                 const Vec<T>& w_hh, const Vec<T>& b_ih, const Vec<T>& b_hh, const RecurrentShape& s) {
  const int B = s.batch, Tn = s.steps, I = s.input, H = s.hidden, G = 3 * H, BT = B * Tn;
  detail::check_extent(h, size_t(BT) * H, "h");
  detail::check_extent(gates, size_t(BT) * G, "gates");
  detail::check_extent(hn, size_t(BT) * H, "hn");
  detail::check_extent(x, size_t(BT) * I, "x");
  broadcast_bias_pair(gates, b_ih, b_hh, BT, G, 2 * H);
  broadcast_rows(hn, view_of(b_hh.data() + 2 * H, H), BT, H);
  gemm<T>({Trans::No, Trans::Yes, BT, G, I, I, I, G}, T(1), x.data(), w_ih.data(), T(1), gates.data());
  for (int t = 0; t < Tn; ++t) {
    if (t > 0) {
      const T* h_prev = h.data() + int64_t(t - 1) * H;
      gemm<T>({Trans::No, Trans::Yes, B, 2 * H, H, Tn * H, H, Tn * G}, T(1), h_prev, w_hh.data(), T(1),
              gates.data() + int64_t(t) * G);
      gemm<T>({Trans::No, Trans::Yes, B, H, H, Tn * H, H, Tn * H}, T(1), h_prev, w_hh.data() + int64_t(2) * H * H, T(1),
              hn.data() + int64_t(t) * H);
    }
    gru_cell_forward(step_rows(h, t, Tn, H), step_rows(gates, t, Tn, G), step_rows(hn, t, Tn, H),
                     t > 0 ? step_rows(h, t - 1, Tn, H) : Rows<T>{}, B, H);
  }
}

// From dh[B, T, H] and the forward's x, h, gates, hn: dx[B, T, I] (overwritten; size 0 skips it), dw_ih, dw_hh,
// db_ih, db_hh (all +=). workspace: gru_workspace_size(s) elements.
template <class T>
void gru_backward(const Vec<T>& dx, const Vec<T>& dw_ih, const Vec<T>& dw_hh, const Vec<T>& db_ih, const Vec<T>& db_hh,
                  const Vec<T>& dh, const Vec<T>& x, const Vec<T>& h, const Vec<T>& gates, const Vec<T>& hn,
                  const Vec<T>& w_ih, const Vec<T>& w_hh, const RecurrentShape& s, const Vec<T>& workspace) {
  const int B = s.batch, Tn = s.steps, I = s.input, H = s.hidden, G = 3 * H, BT = B * Tn;
  detail::check_extent(dh, size_t(BT) * H, "dh");
  detail::check_extent(gates, size_t(BT) * G, "gates");
  if (dx.extent(0) > 0) detail::check_extent(dx, size_t(BT) * I, "dx");
  STRATA_CHECK(workspace.extent(0) >= gru_workspace_size(s), "gru_backward: workspace has {} elements, needs {}",
               workspace.extent(0), gru_workspace_size(s));
  T* ws = workspace.data();
  const Vec<T> dgates = view_of(ws, size_t(BT) * G);
  const Vec<T> dn_x = view_of(ws + size_t(BT) * G, size_t(BT) * H);
  const Vec<T> dh_rec = view_of(ws + size_t(BT) * 4 * H, size_t(B) * H);
  const Vec<T> dbias = view_of(ws + size_t(BT) * 4 * H + size_t(B) * H, size_t(G));

  // Backpropagation through time: the cell writes dh_rec = dh_t * z, the GEMM adds dgates_t W_hh.
  for (int t = Tn - 1; t >= 0; --t) {
    gru_cell_backward(step_rows(dgates, t, Tn, G), step_rows(dn_x, t, Tn, H), all_rows(dh_rec, H),
                      step_rows(dh, t, Tn, H), t == Tn - 1 ? Rows<T>{} : all_rows(dh_rec, H),
                      step_rows(gates, t, Tn, G), step_rows(hn, t, Tn, H),
                      t > 0 ? step_rows(h, t - 1, Tn, H) : Rows<T>{}, B, H);
    if (t > 0)
      gemm<T>({Trans::No, Trans::No, B, H, G, Tn * G, H, H}, T(1), dgates.data() + int64_t(t) * G, w_hh.data(), T(1),
              dh_rec.data());
  }
  // Input side over all B*T rows: its r, z gradients are dgates' first 2H columns, n's is dn_x.
  const T* w_in = w_ih.data() + int64_t(2) * H * I;
  if (dx.extent(0) > 0) {
    gemm<T>({Trans::No, Trans::No, BT, I, 2 * H, G, I, I}, T(1), dgates.data(), w_ih.data(), T(0), dx.data());
    gemm<T>({Trans::No, Trans::No, BT, I, H, H, I, I}, T(1), dn_x.data(), w_in, T(1), dx.data());
  }
  gemm<T>({Trans::Yes, Trans::No, 2 * H, I, BT, G, I, I}, T(1), dgates.data(), x.data(), T(1), dw_ih.data());
  gemm<T>({Trans::Yes, Trans::No, H, I, BT, H, I, I}, T(1), dn_x.data(), x.data(), T(1),
          dw_ih.data() + int64_t(2) * H * I);
  // Biases: db_hh = column sums of dgates; db_ih shares its r, z part and takes n's from dn_x.
  Kokkos::deep_copy(dbias, T(0));
  sum_rows(dbias, dgates, BT, G);
  accumulate(db_hh, dbias, G);
  accumulate(view_of(db_ih.data(), 2 * H), dbias, 2 * H);
  sum_rows(view_of(db_ih.data() + 2 * H, H), dn_x, BT, H);
  detail::hidden_weight_gradient(dw_hh, dgates, h, s, G);  // last: zeroes step 0 of dgates
}

}  // namespace strata
