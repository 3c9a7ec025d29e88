// Whole-sequence LSTM and GRU (src/nn/recurrent.hpp): forward against double references written as plain loops
// from the torch.nn.LSTM / torch.nn.GRU equations (batch_first, h0 = c0 = 0); backward against central finite
// differences of L = sum(dh * h) for x and every parameter, with dh on the last step only (a sequence
// classifier) and on every step (per-step labels); parameter gradients accumulate; bit-identical reruns.
#include "nn/recurrent.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.hpp"
#include "unit/kernels/test_util.hpp"

namespace strata {
namespace {

using namespace strata::testing;

const RecurrentShape kShapes[] = {{3, 5, 7, 6}, {3, 1, 7, 6}, {1, 4, 2, 3}};

std::string name(const RecurrentShape& s) {
  return "B=" + std::to_string(s.batch) + " T=" + std::to_string(s.steps) + " I=" + std::to_string(s.input) +
         " H=" + std::to_string(s.hidden);
}

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

std::vector<double> minus(std::vector<double> a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
  return a;
}

// x[B, T, I] and the parameters of a cell with `gates` gate blocks (LSTM 4, GRU 3), float-representable.
struct Problem {
  RecurrentShape s;
  std::vector<double> x, w_ih, w_hh, b_ih, b_hh;
  Problem(const RecurrentShape& shape, int gates, uint64_t seed) : s(shape) {
    const size_t G = size_t(gates) * s.hidden;
    x = rounded_to_float(random_vector(size_t(s.batch) * s.steps * s.input, seed));
    w_ih = rounded_to_float(random_vector(G * s.input, seed + 1, -0.6, 0.6));
    w_hh = rounded_to_float(random_vector(G * s.hidden, seed + 2, -0.6, 0.6));
    b_ih = rounded_to_float(random_vector(G, seed + 3, -0.5, 0.5));
    b_hh = rounded_to_float(random_vector(G, seed + 4, -0.5, 0.5));
  }
  size_t rows() const { return size_t(s.batch) * s.steps; }
  std::vector<std::vector<double>*> inputs() { return {&x, &w_ih, &w_hh, &b_ih, &b_hh}; }
};

// sum_k w[o, k] v[k] over row o of a [*, n] weight
double row_dot(const std::vector<double>& w, int o, const double* v, int n) {
  double acc = 0;
  for (int k = 0; k < n; ++k) acc += w[size_t(o) * n + k] * v[k];
  return acc;
}

// dh[B, T, H]: random on every step, or on the last step only (zero elsewhere).
std::vector<double> make_dh(const RecurrentShape& s, bool last_only, uint64_t seed) {
  auto dh = random_vector(size_t(s.batch) * s.steps * s.hidden, seed);
  if (last_only)
    for (int b = 0; b < s.batch; ++b)
      for (int t = 0; t < s.steps - 1; ++t)
        for (int j = 0; j < s.hidden; ++j) dh[(size_t(b) * s.steps + t) * s.hidden + j] = 0;
  return dh;
}

struct Grads {
  std::vector<double> dx, dw_ih, dw_hh, db_ih, db_hh;
  std::vector<std::vector<double>> all() const { return {dx, dw_ih, dw_hh, db_ih, db_hh}; }
};

// Finite differences of L = sum(dh * h) for x and every parameter.
Grads finite_difference_grads(Problem& p, const std::vector<double>& dh,
                              const std::function<std::vector<double>(const Problem&)>& forward_h) {
  auto loss = [&] { return dot(forward_h(p), dh); };
  Grads g;
  std::vector<double>* out[] = {&g.dx, &g.dw_ih, &g.dw_hh, &g.db_ih, &g.db_hh};
  const auto in = p.inputs();
  for (size_t i = 0; i < in.size(); ++i) *out[i] = finite_difference(*in[i], loss);
  return g;
}

// Checks analytic gradients against finite differences: dx overwritten (garbage before), parameter gradients
// added onto random existing values (compared both as a whole and after removing the offsets).
void expect_grads_match(const Grads& got, const Grads& g0, const Grads& fd, const std::string& what) {
  EXPECT_LT(rel_error(got.dx, fd.dx), kGradTol) << what << " dx";
  const char* names[] = {"dw_ih", "dw_hh", "db_ih", "db_hh"};
  const auto a = got.all(), z = g0.all(), f = fd.all();
  for (int i = 1; i < 5; ++i) {
    EXPECT_LT(rel_error(a[i], add(z[i], f[i])), kGradTol) << what << " " << names[i - 1];
    EXPECT_LT(rel_error(minus(a[i], z[i]), f[i]), kGradTol) << what << " " << names[i - 1] << " (accumulated part)";
  }
}

Grads random_grads(const Problem& p, uint64_t seed) {
  return {random_vector(p.x.size(), seed), random_vector(p.w_ih.size(), seed + 1),
          random_vector(p.w_hh.size(), seed + 2), random_vector(p.b_ih.size(), seed + 3),
          random_vector(p.b_hh.size(), seed + 4)};
}

Grads zero_grads(const Problem& p) {
  return {std::vector<double>(p.x.size()), std::vector<double>(p.w_ih.size()), std::vector<double>(p.w_hh.size()),
          std::vector<double>(p.b_ih.size()), std::vector<double>(p.b_hh.size())};
}

// ---------------------------------------------------------------------------------------------------------- LSTM

struct LstmOut {
  std::vector<double> h, c, gates;
};

// torch.nn.LSTM: i, f, g, o = sigmoid, sigmoid, tanh, sigmoid(W_i* x_t + b_i* + W_h* h_{t-1} + b_h*);
// c_t = f c_{t-1} + i g; h_t = o tanh(c_t).
LstmOut lstm_reference(const Problem& p) {
  const int B = p.s.batch, Tn = p.s.steps, I = p.s.input, H = p.s.hidden;
  LstmOut r{std::vector<double>(p.rows() * H), std::vector<double>(p.rows() * H),
            std::vector<double>(p.rows() * 4 * H)};
  for (int b = 0; b < B; ++b) {
    std::vector<double> h(H, 0.0), c(H, 0.0), a(4 * H);
    for (int t = 0; t < Tn; ++t) {
      const size_t row = size_t(b) * Tn + t;
      for (int o = 0; o < 4 * H; ++o)
        a[o] = row_dot(p.w_ih, o, &p.x[row * I], I) + p.b_ih[o] + row_dot(p.w_hh, o, h.data(), H) + p.b_hh[o];
      for (int j = 0; j < H; ++j) {
        const double i = sigmoid_ref(a[j]), f = sigmoid_ref(a[H + j]), g = std::tanh(a[2 * H + j]),
                     o = sigmoid_ref(a[3 * H + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * std::tanh(c[j]);
        r.h[row * H + j] = h[j];
        r.c[row * H + j] = c[j];
        const double act[4] = {i, f, g, o};
        for (int k = 0; k < 4; ++k) r.gates[row * 4 * H + k * H + j] = act[k];
      }
    }
  }
  return r;
}

template <class T>
struct LstmRun {
  Vec<T> x, w_ih, w_hh, b_ih, b_hh, h, c, gates;
  RecurrentShape s;
  explicit LstmRun(const Problem& p)
      : x(to_view<T>(p.x)),
        w_ih(to_view<T>(p.w_ih)),
        w_hh(to_view<T>(p.w_hh)),
        b_ih(to_view<T>(p.b_ih)),
        b_hh(to_view<T>(p.b_hh)),
        h(to_view<T>(random_vector(p.rows() * p.s.hidden, 11))),  // garbage: overwritten
        c(to_view<T>(random_vector(p.rows() * p.s.hidden, 12))),
        gates(to_view<T>(random_vector(p.rows() * 4 * p.s.hidden, 13))),
        s(p.s) {
    lstm_forward<T>(h, c, gates, x, w_ih, w_hh, b_ih, b_hh, s);
  }
  // Gradients for dh, starting from g0 (dx from garbage); with_dx false passes a size-0 dx.
  Grads backward(const std::vector<double>& dh, const Grads& g0, bool with_dx = true) const {
    Vec<T> dx = with_dx ? to_view<T>(random_vector(g0.dx.size(), 14)) : Vec<T>();
    Vec<T> dw_ih = to_view<T>(g0.dw_ih), dw_hh = to_view<T>(g0.dw_hh), db_ih = to_view<T>(g0.db_ih),
           db_hh = to_view<T>(g0.db_hh);
    Vec<T> ws = to_view<T>(random_vector(lstm_workspace_size(s), 15));  // garbage: no assumption on contents
    lstm_backward<T>(dx, dw_ih, dw_hh, db_ih, db_hh, to_view<T>(dh), x, h, c, gates, w_ih, w_hh, s, ws);
    return {with_dx ? to_host(dx) : std::vector<double>(), to_host(dw_ih), to_host(dw_hh), to_host(db_ih),
            to_host(db_hh)};
  }
};

template <class T>
void expect_lstm_forward(double tol) {
  for (const auto& s : kShapes) {
    const Problem p(s, 4, 4001);
    const auto ref = lstm_reference(p);
    const LstmRun<T> run(p);
    EXPECT_LT(rel_error(to_host(run.h), ref.h), tol) << name(s);
    EXPECT_LT(rel_error(to_host(run.c), ref.c), tol) << name(s);
    EXPECT_LT(rel_error(to_host(run.gates), ref.gates), tol) << name(s);
  }
}

TEST(RecurrentLstm, ForwardMatchesReferenceFloat) { expect_lstm_forward<float>(kFloatTol); }
TEST(RecurrentLstm, ForwardMatchesReferenceDouble) { expect_lstm_forward<double>(kDoubleTol); }

void expect_lstm_backward(bool last_only) {
  for (const auto& s : kShapes) {
    Problem p(s, 4, 4101);
    const auto dh = make_dh(s, last_only, 4102);
    const Grads fd = finite_difference_grads(p, dh, [](const Problem& q) { return lstm_reference(q).h; });
    const Grads g0 = random_grads(p, 4103);
    const Grads got = LstmRun<double>(p).backward(dh, g0);
    expect_grads_match(got, g0, fd, name(s));
  }
}

TEST(RecurrentLstm, BackwardMatchesFiniteDifferencesLastStepOnly) { expect_lstm_backward(true); }
TEST(RecurrentLstm, BackwardMatchesFiniteDifferencesAllSteps) { expect_lstm_backward(false); }

TEST(RecurrentLstm, BackwardFloatMatchesDouble) {
  const Problem p(kShapes[0], 4, 4201);
  const auto dh = rounded_to_float(make_dh(p.s, false, 4202));
  const Grads g0 = zero_grads(p);
  const auto f = LstmRun<float>(p).backward(dh, g0).all(), d = LstmRun<double>(p).backward(dh, g0).all();
  for (size_t i = 0; i < f.size(); ++i) EXPECT_LT(rel_error(f[i], d[i]), kFloatTol) << "gradient " << i;
}

TEST(RecurrentLstm, SizeZeroDxSkipsItAndBitIdenticalReruns) {
  const Problem p(kShapes[0], 4, 4301);
  const auto dh = make_dh(p.s, false, 4302);
  const Grads g0 = random_grads(p, 4303);
  const LstmRun<float> a(p), b(p);
  EXPECT_EQ(to_host(a.h), to_host(b.h));
  EXPECT_EQ(to_host(a.c), to_host(b.c));
  const Grads ga = a.backward(dh, g0), gb = b.backward(dh, g0), gn = a.backward(dh, g0, false);
  EXPECT_EQ(ga.all(), gb.all());
  EXPECT_TRUE(gn.dx.empty());
  for (int i = 1; i < 5; ++i) EXPECT_EQ(gn.all()[i], ga.all()[i]) << "gradient " << i;
}

TEST(RecurrentLstm, RejectsASmallWorkspace) {
  const Problem p(kShapes[0], 4, 4401);
  const LstmRun<double> run(p);
  const Grads g = random_grads(p, 4402);
  Vec<double> ws("ws", lstm_workspace_size(p.s) - 1);
  EXPECT_THROW(lstm_backward<double>(to_view<double>(g.dx), to_view<double>(g.dw_ih), to_view<double>(g.dw_hh),
                                     to_view<double>(g.db_ih), to_view<double>(g.db_hh),
                                     to_view<double>(make_dh(p.s, false, 4403)), run.x, run.h, run.c, run.gates,
                                     run.w_ih, run.w_hh, p.s, ws),
               Error);
}

// ----------------------------------------------------------------------------------------------------------- GRU

struct GruOut {
  std::vector<double> h, gates, hn;
};

// torch.nn.GRU: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
// h_t = (1 - z) n + z h_{t-1}.
GruOut gru_reference(const Problem& p) {
  const int B = p.s.batch, Tn = p.s.steps, I = p.s.input, H = p.s.hidden;
  GruOut r{std::vector<double>(p.rows() * H), std::vector<double>(p.rows() * 3 * H), std::vector<double>(p.rows() * H)};
  for (int b = 0; b < B; ++b) {
    std::vector<double> h(H, 0.0), next(H);
    for (int t = 0; t < Tn; ++t) {
      const size_t row = size_t(b) * Tn + t;
      const double* x = &p.x[row * I];
      for (int j = 0; j < H; ++j) {
        const double rg =
            sigmoid_ref(row_dot(p.w_ih, j, x, I) + p.b_ih[j] + row_dot(p.w_hh, j, h.data(), H) + p.b_hh[j]);
        const double z = sigmoid_ref(row_dot(p.w_ih, H + j, x, I) + p.b_ih[H + j] +
                                     row_dot(p.w_hh, H + j, h.data(), H) + p.b_hh[H + j]);
        const double hn = row_dot(p.w_hh, 2 * H + j, h.data(), H) + p.b_hh[2 * H + j];
        const double n = std::tanh(row_dot(p.w_ih, 2 * H + j, x, I) + p.b_ih[2 * H + j] + rg * hn);
        next[j] = (1 - z) * n + z * h[j];
        r.gates[row * 3 * H + j] = rg;
        r.gates[row * 3 * H + H + j] = z;
        r.gates[row * 3 * H + 2 * H + j] = n;
        r.hn[row * H + j] = hn;
        r.h[row * H + j] = next[j];
      }
      h = next;
    }
  }
  return r;
}

template <class T>
struct GruRun {
  Vec<T> x, w_ih, w_hh, b_ih, b_hh, h, gates, hn;
  RecurrentShape s;
  explicit GruRun(const Problem& p)
      : x(to_view<T>(p.x)),
        w_ih(to_view<T>(p.w_ih)),
        w_hh(to_view<T>(p.w_hh)),
        b_ih(to_view<T>(p.b_ih)),
        b_hh(to_view<T>(p.b_hh)),
        h(to_view<T>(random_vector(p.rows() * p.s.hidden, 21))),  // garbage: overwritten
        gates(to_view<T>(random_vector(p.rows() * 3 * p.s.hidden, 22))),
        hn(to_view<T>(random_vector(p.rows() * p.s.hidden, 23))),
        s(p.s) {
    gru_forward<T>(h, gates, hn, x, w_ih, w_hh, b_ih, b_hh, s);
  }
  Grads backward(const std::vector<double>& dh, const Grads& g0, bool with_dx = true) const {
    Vec<T> dx = with_dx ? to_view<T>(random_vector(g0.dx.size(), 24)) : Vec<T>();
    Vec<T> dw_ih = to_view<T>(g0.dw_ih), dw_hh = to_view<T>(g0.dw_hh), db_ih = to_view<T>(g0.db_ih),
           db_hh = to_view<T>(g0.db_hh);
    Vec<T> ws = to_view<T>(random_vector(gru_workspace_size(s), 25));
    gru_backward<T>(dx, dw_ih, dw_hh, db_ih, db_hh, to_view<T>(dh), x, h, gates, hn, w_ih, w_hh, s, ws);
    return {with_dx ? to_host(dx) : std::vector<double>(), to_host(dw_ih), to_host(dw_hh), to_host(db_ih),
            to_host(db_hh)};
  }
};

template <class T>
void expect_gru_forward(double tol) {
  for (const auto& s : kShapes) {
    const Problem p(s, 3, 5001);
    const auto ref = gru_reference(p);
    const GruRun<T> run(p);
    EXPECT_LT(rel_error(to_host(run.h), ref.h), tol) << name(s);
    EXPECT_LT(rel_error(to_host(run.gates), ref.gates), tol) << name(s);
    EXPECT_LT(rel_error(to_host(run.hn), ref.hn), tol) << name(s);
  }
}

TEST(RecurrentGru, ForwardMatchesReferenceFloat) { expect_gru_forward<float>(kFloatTol); }
TEST(RecurrentGru, ForwardMatchesReferenceDouble) { expect_gru_forward<double>(kDoubleTol); }

void expect_gru_backward(bool last_only) {
  for (const auto& s : kShapes) {
    Problem p(s, 3, 5101);
    const auto dh = make_dh(s, last_only, 5102);
    const Grads fd = finite_difference_grads(p, dh, [](const Problem& q) { return gru_reference(q).h; });
    const Grads g0 = random_grads(p, 5103);
    const Grads got = GruRun<double>(p).backward(dh, g0);
    expect_grads_match(got, g0, fd, name(s));
  }
}

TEST(RecurrentGru, BackwardMatchesFiniteDifferencesLastStepOnly) { expect_gru_backward(true); }
TEST(RecurrentGru, BackwardMatchesFiniteDifferencesAllSteps) { expect_gru_backward(false); }

TEST(RecurrentGru, BackwardFloatMatchesDouble) {
  const Problem p(kShapes[0], 3, 5201);
  const auto dh = rounded_to_float(make_dh(p.s, false, 5202));
  const Grads g0 = zero_grads(p);
  const auto f = GruRun<float>(p).backward(dh, g0).all(), d = GruRun<double>(p).backward(dh, g0).all();
  for (size_t i = 0; i < f.size(); ++i) EXPECT_LT(rel_error(f[i], d[i]), kFloatTol) << "gradient " << i;
}

TEST(RecurrentGru, SizeZeroDxSkipsItAndBitIdenticalReruns) {
  const Problem p(kShapes[0], 3, 5301);
  const auto dh = make_dh(p.s, false, 5302);
  const Grads g0 = random_grads(p, 5303);
  const GruRun<float> a(p), b(p);
  EXPECT_EQ(to_host(a.h), to_host(b.h));
  const Grads ga = a.backward(dh, g0), gb = b.backward(dh, g0), gn = a.backward(dh, g0, false);
  EXPECT_EQ(ga.all(), gb.all());
  EXPECT_TRUE(gn.dx.empty());
  for (int i = 1; i < 5; ++i) EXPECT_EQ(gn.all()[i], ga.all()[i]) << "gradient " << i;
}

TEST(RecurrentGru, RejectsASmallWorkspace) {
  const Problem p(kShapes[0], 3, 5401);
  const GruRun<double> run(p);
  const Grads g = random_grads(p, 5402);
  Vec<double> ws("ws", gru_workspace_size(p.s) - 1);
  EXPECT_THROW(gru_backward<double>(to_view<double>(g.dx), to_view<double>(g.dw_ih), to_view<double>(g.dw_hh),
                                    to_view<double>(g.db_ih), to_view<double>(g.db_hh),
                                    to_view<double>(make_dh(p.s, false, 5403)), run.x, run.h, run.gates, run.hn,
                                    run.w_ih, run.w_hh, p.s, ws),
               Error);
}

}  // namespace
}  // namespace strata
