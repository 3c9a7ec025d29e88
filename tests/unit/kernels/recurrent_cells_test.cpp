// LSTM / GRU cell kernels (kernels/recurrent_cells.hpp): forward against plain-loop references written from the
// torch.nn.LSTM / torch.nn.GRU equations; backward against finite differences; one step of a [B, T, W] tensor
// read and written in place without touching the other steps.
#include "kernels/recurrent_cells.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

constexpr int kB = 3, kH = 6;

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

std::vector<double> minus(std::vector<double> a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return a;
}

// ---------------------------------------------------------------------------------------------------------- LSTM

struct LstmCellData {
  std::vector<double> pre = rounded_to_float(random_vector(size_t(kB) * 4 * kH, 3101, -2.5, 2.5));
  std::vector<double> c_prev = rounded_to_float(random_vector(size_t(kB) * kH, 3102, -1.5, 1.5));
};

struct LstmCellOut {
  std::vector<double> gates, c, h;
};

// i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of the pre-activation blocks; c = f c_prev + i g; h = o tanh(c).
LstmCellOut lstm_cell_reference(const std::vector<double>& pre, const std::vector<double>& c_prev) {
  LstmCellOut r{pre, std::vector<double>(size_t(kB) * kH), std::vector<double>(size_t(kB) * kH)};
  for (int b = 0; b < kB; ++b)
    for (int j = 0; j < kH; ++j) {
      const double* a = &pre[size_t(b) * 4 * kH];
      const double i = sigmoid_ref(a[j]), f = sigmoid_ref(a[kH + j]);
      const double g = std::tanh(a[2 * kH + j]), o = sigmoid_ref(a[3 * kH + j]);
      double* gates = &r.gates[size_t(b) * 4 * kH];
      gates[j] = i, gates[kH + j] = f, gates[2 * kH + j] = g, gates[3 * kH + j] = o;
      const double c = f * c_prev[b * kH + j] + i * g;
      r.c[b * kH + j] = c;
      r.h[b * kH + j] = o * std::tanh(c);
    }
  return r;
}

template <class T>
LstmCellOut run_lstm_cell(const std::vector<double>& pre, const std::vector<double>& c_prev, bool zero_state) {
  Vec<T> gates = to_view<T>(pre), cp = to_view<T>(c_prev);
  Vec<T> c = to_view<T>(random_vector(size_t(kB) * kH, 3103)), h = to_view<T>(random_vector(size_t(kB) * kH, 3104));
  lstm_cell_forward<T>(all_rows(h, kH), all_rows(c, kH), all_rows(gates, 4 * kH),
                       zero_state ? Rows<T>{} : all_rows(cp, kH), kB, kH);
  return {to_host(gates), to_host(c), to_host(h)};
}

template <class T>
void expect_lstm_cell_forward(double tol) {
  LstmCellData d;
  for (bool zero_state : {false, true}) {
    const auto ref = lstm_cell_reference(d.pre, zero_state ? std::vector<double>(d.c_prev.size()) : d.c_prev);
    const auto got = run_lstm_cell<T>(d.pre, d.c_prev, zero_state);
    EXPECT_LT(rel_error(got.gates, ref.gates), tol) << "zero state " << zero_state;
    EXPECT_LT(rel_error(got.c, ref.c), tol) << "zero state " << zero_state;
    EXPECT_LT(rel_error(got.h, ref.h), tol) << "zero state " << zero_state;
  }
}

TEST(LstmCell, ForwardMatchesReferenceFloat) { expect_lstm_cell_forward<float>(kFloatTol); }
TEST(LstmCell, ForwardMatchesReferenceDouble) { expect_lstm_cell_forward<double>(kDoubleTol); }

// L = sum(Rh * h) + sum(Rc * c): dh = Rh (given as dh + dh_rec, to check both are read), dc_next = Rc.
TEST(LstmCell, BackwardMatchesFiniteDifferences) {
  LstmCellData d;
  const size_t n = size_t(kB) * kH;
  const auto Rh = random_vector(n, 3105), Rc = random_vector(n, 3106), part = random_vector(n, 3107);
  auto loss = [&] {
    const auto out = lstm_cell_reference(d.pre, d.c_prev);
    return dot(out.h, Rh) + dot(out.c, Rc);
  };
  const auto fd_pre = finite_difference(d.pre, loss);
  const auto fd_c_prev = finite_difference(d.c_prev, loss);

  Vec<double> gates = to_view<double>(d.pre), cp = to_view<double>(d.c_prev), c("c", n), h("h", n);
  lstm_cell_forward<double>(all_rows(h, kH), all_rows(c, kH), all_rows(gates, 4 * kH), all_rows(cp, kH), kB, kH);
  Vec<double> dgates = to_view<double>(random_vector(4 * n, 3108));  // garbage: overwritten
  Vec<double> dh = to_view<double>(minus(Rh, part)), dh_rec = to_view<double>(part), dc = to_view<double>(Rc);
  // dc_prev written over dc_next, as the sequence layer does
  lstm_cell_backward<double>(all_rows(dgates, 4 * kH), all_rows(dc, kH), all_rows(dh, kH), all_rows(dh_rec, kH),
                             all_rows(dc, kH), all_rows(gates, 4 * kH), all_rows(cp, kH), all_rows(c, kH), kB, kH);
  EXPECT_LT(rel_error(to_host(dgates), fd_pre), kGradTol);
  EXPECT_LT(rel_error(to_host(dc), fd_c_prev), kGradTol);
}

// Step 1 of [B, 3, W] tensors: exactly that step's rows change.
TEST(LstmCell, ForwardWritesOneStepInPlace) {
  LstmCellData d;
  constexpr int kSteps = 3, kStep = 1;
  auto embed = [&](const std::vector<double>& v, int width, uint64_t seed) {
    auto big = random_vector(size_t(kB) * kSteps * width, seed);
    for (int b = 0; b < kB; ++b)
      for (int j = 0; j < width; ++j) big[(size_t(b) * kSteps + kStep) * width + j] = v[size_t(b) * width + j];
    return big;
  };
  auto extract = [&](const std::vector<double>& big, int width) {
    std::vector<double> v(size_t(kB) * width);
    for (int b = 0; b < kB; ++b)
      for (int j = 0; j < width; ++j) v[size_t(b) * width + j] = big[(size_t(b) * kSteps + kStep) * width + j];
    return v;
  };
  const auto ref = lstm_cell_reference(d.pre, d.c_prev);
  const auto gates0 = embed(d.pre, 4 * kH, 3109), cp0 = embed(d.c_prev, kH, 3110);
  const auto c0 = random_vector(size_t(kB) * kSteps * kH, 3111), h0 = random_vector(size_t(kB) * kSteps * kH, 3112);
  Vec<double> gates = to_view<double>(gates0), cp = to_view<double>(cp0), c = to_view<double>(c0),
              h = to_view<double>(h0);
  lstm_cell_forward<double>(step_rows(h, kStep, kSteps, kH), step_rows(c, kStep, kSteps, kH),
                            step_rows(gates, kStep, kSteps, 4 * kH), step_rows(cp, kStep, kSteps, kH), kB, kH);
  const auto g = to_host(gates), cc = to_host(c), hh = to_host(h);
  EXPECT_LT(rel_error(extract(g, 4 * kH), ref.gates), kDoubleTol);
  EXPECT_LT(rel_error(extract(cc, kH), ref.c), kDoubleTol);
  EXPECT_LT(rel_error(extract(hh, kH), ref.h), kDoubleTol);
  // every other step's elements unchanged
  auto other_steps = [&](const std::vector<double>& big, int width) {
    std::vector<double> v;
    for (size_t k = 0; k < big.size(); ++k)
      if (int(k / width) % kSteps != kStep) v.push_back(big[k]);
    return v;
  };
  EXPECT_EQ(other_steps(g, 4 * kH), other_steps(gates0, 4 * kH));
  EXPECT_EQ(other_steps(cc, kH), other_steps(c0, kH));
  EXPECT_EQ(other_steps(hh, kH), other_steps(h0, kH));
  EXPECT_EQ(to_host(cp), cp0);
}

// ----------------------------------------------------------------------------------------------------------- GRU

struct GruCellData {
  // pre: r, z pre-activations (both sides summed) and n's input side; hn = h_prev W_hn^T + b_hn
  std::vector<double> pre = rounded_to_float(random_vector(size_t(kB) * 3 * kH, 3201, -2.5, 2.5));
  std::vector<double> hn = rounded_to_float(random_vector(size_t(kB) * kH, 3202, -1.5, 1.5));
  std::vector<double> h_prev = rounded_to_float(random_vector(size_t(kB) * kH, 3203));
};

struct GruCellOut {
  std::vector<double> gates, h;
};

// r = sigmoid(a_r), z = sigmoid(a_z), n = tanh(a_n + r * hn), h = (1 - z) n + z h_prev.
GruCellOut gru_cell_reference(const std::vector<double>& pre, const std::vector<double>& hn,
                              const std::vector<double>& h_prev) {
  GruCellOut r{pre, std::vector<double>(size_t(kB) * kH)};
  for (int b = 0; b < kB; ++b)
    for (int j = 0; j < kH; ++j) {
      const double* a = &pre[size_t(b) * 3 * kH];
      const double rg = sigmoid_ref(a[j]), z = sigmoid_ref(a[kH + j]);
      const double n = std::tanh(a[2 * kH + j] + rg * hn[b * kH + j]);
      double* gates = &r.gates[size_t(b) * 3 * kH];
      gates[j] = rg, gates[kH + j] = z, gates[2 * kH + j] = n;
      r.h[b * kH + j] = (1 - z) * n + z * h_prev[b * kH + j];
    }
  return r;
}

template <class T>
GruCellOut run_gru_cell(const GruCellData& d, bool zero_state) {
  Vec<T> gates = to_view<T>(d.pre), hn = to_view<T>(d.hn), hp = to_view<T>(d.h_prev);
  Vec<T> h = to_view<T>(random_vector(size_t(kB) * kH, 3204));
  gru_cell_forward<T>(all_rows(h, kH), all_rows(gates, 3 * kH), all_rows(hn, kH),
                      zero_state ? Rows<T>{} : all_rows(hp, kH), kB, kH);
  return {to_host(gates), to_host(h)};
}

template <class T>
void expect_gru_cell_forward(double tol) {
  GruCellData d;
  for (bool zero_state : {false, true}) {
    const auto ref = gru_cell_reference(d.pre, d.hn, zero_state ? std::vector<double>(d.h_prev.size()) : d.h_prev);
    const auto got = run_gru_cell<T>(d, zero_state);
    EXPECT_LT(rel_error(got.gates, ref.gates), tol) << "zero state " << zero_state;
    EXPECT_LT(rel_error(got.h, ref.h), tol) << "zero state " << zero_state;
  }
}

TEST(GruCell, ForwardMatchesReferenceFloat) { expect_gru_cell_forward<float>(kFloatTol); }
TEST(GruCell, ForwardMatchesReferenceDouble) { expect_gru_cell_forward<double>(kDoubleTol); }

// L = sum(R * h), dh = R given as dh + dh_rec. Expected: dgates_h = (dL/da_r, dL/da_z, dL/dhn),
// dn_x = dL/da_n (input side), dh_prev = dL/dh_prev holding the pre-activations and hn fixed.
TEST(GruCell, BackwardMatchesFiniteDifferences) {
  GruCellData d;
  const size_t n = size_t(kB) * kH;
  const auto R = random_vector(n, 3205), part = random_vector(n, 3206);
  auto loss = [&] { return dot(gru_cell_reference(d.pre, d.hn, d.h_prev).h, R); };
  const auto fd_pre = finite_difference(d.pre, loss);
  const auto fd_hn = finite_difference(d.hn, loss);
  const auto fd_h_prev = finite_difference(d.h_prev, loss);
  std::vector<double> want_h(3 * n), want_nx(n);
  for (int b = 0; b < kB; ++b)
    for (int j = 0; j < kH; ++j) {
      const size_t row = size_t(b) * 3 * kH;
      want_h[row + j] = fd_pre[row + j];
      want_h[row + kH + j] = fd_pre[row + kH + j];
      want_h[row + 2 * kH + j] = fd_hn[b * kH + j];
      want_nx[b * kH + j] = fd_pre[row + 2 * kH + j];
    }

  Vec<double> gates = to_view<double>(d.pre), hn = to_view<double>(d.hn), hp = to_view<double>(d.h_prev);
  Vec<double> h("h", n);
  gru_cell_forward<double>(all_rows(h, kH), all_rows(gates, 3 * kH), all_rows(hn, kH), all_rows(hp, kH), kB, kH);
  Vec<double> dgates = to_view<double>(random_vector(3 * n, 3207)), dnx = to_view<double>(random_vector(n, 3208));
  Vec<double> dh = to_view<double>(minus(R, part)), dh_rec = to_view<double>(part);
  // dh_prev written over dh_rec, as the sequence layer does
  gru_cell_backward<double>(all_rows(dgates, 3 * kH), all_rows(dnx, kH), all_rows(dh_rec, kH), all_rows(dh, kH),
                            all_rows(dh_rec, kH), all_rows(gates, 3 * kH), all_rows(hn, kH), all_rows(hp, kH), kB, kH);
  EXPECT_LT(rel_error(to_host(dgates), want_h), kGradTol);
  EXPECT_LT(rel_error(to_host(dnx), want_nx), kGradTol);
  EXPECT_LT(rel_error(to_host(dh_rec), fd_h_prev), kGradTol);
}

}  // namespace
}  // namespace strata
