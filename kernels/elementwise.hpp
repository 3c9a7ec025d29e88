#pragma once
// Residual add and the small elementwise helpers the layers share.
#include "kernels/common.hpp"
#include "kernels/kernel_scratch.hpp"

namespace strata {

// out[n] = a[n] + b[n]  (residual add; its backward is the identity into both inputs)
template <class T>
void residual_forward(const Vec<T>& out, const Vec<T>& a, const Vec<T>& b, size_t n) {
  Kokkos::parallel_for(
      "strata::elementwise::residual_forward", range(n), KOKKOS_LAMBDA(const int64_t i) { out(i) = a(i) + b(i); });
}

// dst[n] += src[n]
template <class T>
void accumulate(const Vec<T>& dst, const Vec<T>& src, size_t n) {
  Kokkos::parallel_for(
      "strata::elementwise::accumulate", range(n), KOKKOS_LAMBDA(const int64_t i) { dst(i) += src(i); });
}

// y[N, O] = bias broadcast over rows (a GEMM with beta = 1 then adds x W^T). bias[O].
// dst[N, w] = columns [first, first + w) of src[N, W]
template <class T>
void copy_columns(const Vec<T>& dst, const Vec<T>& src, int rows, int64_t src_cols, int64_t first, int64_t cols) {
  Kokkos::parallel_for(
      "strata::elementwise::copy_columns", range(size_t(rows) * size_t(cols)), KOKKOS_LAMBDA(const int64_t i) {
        const int64_t n = i / cols, c = i % cols;
        dst(i) = src(n * src_cols + first + c);
      });
}

template <class T>
void broadcast_rows(const Vec<T>& y, const Vec<T>& bias, int rows, int cols) {
  const int64_t O = cols;
  Kokkos::parallel_for(
      "strata::elementwise::broadcast_rows", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        for (int64_t o = 0; o < O; ++o) y(n * O + o) = bias(o);
      });
}

// dbias[O] += sum over rows of dy[N, O], deterministic in both shapes. Host (Thread): each thread owns a block of
// columns and walks the rows, reading them contiguously (vectorised). GPU (Team): two levels, each thread summing
// one column over a chunk of rows into a [chunks, O] scratch (reads coalesced across columns), then each column
// summing its chunks in order.
template <class T, RowShape shape = kRowShape>
void sum_rows(const Vec<T>& dbias, const Vec<T>& dy, int rows, int cols) {
  const int64_t O = cols, N = rows;
  if constexpr (shape == RowShape::Team) {
    const int64_t chunks = (N + kRowChunk - 1) / kRowChunk;
    const Vec<T> part = kernel_scratch<T>(size_t(chunks * O));
    Kokkos::parallel_for(
        "strata::elementwise::sum_rows_chunks", range(size_t(chunks * O)), KOKKOS_LAMBDA(const int64_t i) {
          const int64_t k = i / O, o = i % O, end = (k + 1) * kRowChunk < N ? (k + 1) * kRowChunk : N;
          T acc = 0;
          for (int64_t n = k * kRowChunk; n < end; ++n) acc += dy(n * O + o);
          part(i) = acc;
        });
    Kokkos::parallel_for(
        "strata::elementwise::sum_rows_chunks_sum", range(size_t(O)), KOKKOS_LAMBDA(const int64_t o) {
          T acc = 0;
          for (int64_t k = 0; k < chunks; ++k) acc += part(k * O + o);
          dbias(o) += acc;
        });
    return;
  }
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (O + kBlock - 1) / kBlock;
  Kokkos::parallel_for(
      "strata::elementwise::sum_rows", range(blocks), KOKKOS_LAMBDA(const int64_t blk) {
        const int64_t begin = blk * kBlock, end = begin + kBlock < O ? begin + kBlock : O;
        T acc[kBlock] = {};
        for (int64_t n = 0; n < N; ++n)
          for (int64_t o = begin; o < end; ++o) acc[o - begin] += dy(n * O + o);
        for (int64_t o = begin; o < end; ++o) dbias(o) += acc[o - begin];
      });
}

// y[N, O] = r[N, O] + bias[O]  (the residual plus bias; a GEMM with beta = 1 then adds x W^T)
template <class T>
void residual_bias(const Vec<T>& y, const Vec<T>& r, const Vec<T>& bias, int rows, int cols) {
  const int64_t O = cols;
  Kokkos::parallel_for(
      "strata::elementwise::residual_bias", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        for (int64_t o = 0; o < O; ++o) y(n * O + o) = r(n * O + o) + bias(o);
      });
}

// y[N, O] = r[N, O] + bias[O] + z[N, O]  (residual + bias + a row-parallel layer's summed output)
template <class T>
void residual_bias_add(const Vec<T>& y, const Vec<T>& r, const Vec<T>& bias, const Vec<T>& z, int rows, int cols) {
  const int64_t O = cols;
  Kokkos::parallel_for(
      "strata::elementwise::residual_bias_add", range(rows), KOKKOS_LAMBDA(const int64_t n) {
        for (int64_t o = 0; o < O; ++o) y(n * O + o) = r(n * O + o) + bias(o) + z(n * O + o);
      });
}

}  // namespace strata
