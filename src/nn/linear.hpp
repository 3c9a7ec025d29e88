#pragma once
// Fully connected layer, torch.nn.Linear convention: W is [out, in], y = x W^T + b.
#include "kernels/common.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"

namespace strata {

// y[N, O] = x[N, I] W[O, I]^T + b[O]; with `residual` given, y = residual + x W^T + b (fused add).
template <class T>
void linear_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int rows, int in, int out,
                    const Vec<T>* residual = nullptr) {
  if (residual) {
    residual_bias(y, *residual, b, rows, out);
  } else {
    broadcast_rows(y, b, rows, out);
  }
  gemm<T>({Trans::No, Trans::Yes, rows, out, in, in, in, out}, T(1), x.data(), w.data(), T(1), y.data());
}

// dx[N, I] = dy[N, O] W[O, I] (overwrites, or adds when accumulate_dx); dW[O, I] += dy^T x; db[O] += sum_n dy.
template <class T>
void linear_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                     const Vec<T>& w, int rows, int in, int out, bool accumulate_dx = false) {
  gemm<T>({Trans::No, Trans::No, rows, in, out, out, in, in}, T(1), dy.data(), w.data(), accumulate_dx ? T(1) : T(0),
          dx.data());
  gemm<T>({Trans::Yes, Trans::No, out, in, rows, out, in, in}, T(1), dy.data(), x.data(), T(1), dw.data());
  sum_rows(db, dy, rows, out);
}

}  // namespace strata
