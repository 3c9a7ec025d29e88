#include "parallel/tensor_parallel.hpp"

#include "core/stopwatch.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/distillation.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/embedding.hpp"
#include "kernels/gemm.hpp"
#include "kernels/vocab_parallel_cross_entropy.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"

namespace strata {

template <class T>
TensorParallel<T>::TensorParallel(Communicator* group, Communicator* host_group)
    : group_(group && group->size() > 1 ? group : nullptr),
      host_group_(group_ ? (host_group ? host_group : group_) : nullptr),
      rank_(group_ ? group_->rank() : 0),
      size_(group_ ? group_->size() : 1) {}

template <class T>
void TensorParallel<T>::sum(const Vec<T>& v) {
  if (!group_) return;
  Kokkos::fence();  // the kernels that wrote v are done before the host hands it to the communicator
  const auto start = Clock::now();
  group_->all_reduce_sum(v.data(), v.extent(0));
  comm_ms_ += ms_since(start);
}

template <class T>
void TensorParallel<T>::ensure_rows(int rows) {
  if (row_max_.extent(0) >= size_t(rows)) return;
  row_max_ = Vec<T>("strata::tensor_parallel::row_max", size_t(rows));
  row_sum_ = Vec<T>("strata::tensor_parallel::row_sum", size_t(rows));
  row_picked_ = Vec<T>("strata::tensor_parallel::row_picked", size_t(rows));
}

template <class T>
double TensorParallel<T>::take_comm_ms() {
  const double ms = comm_ms_;
  comm_ms_ = 0;
  return ms;
}

template <class T>
void TensorParallel<T>::copy_backward(const Vec<T>& grad) {
  sum(grad);
}

template <class T>
void TensorParallel<T>::reduce_forward(const Vec<T>& x) {
  sum(x);
}

template <class T>
void TensorParallel<T>::column_linear_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b,
                                              int rows, int in, int out_local) {
  if (b.extent(0) > 0) {
    linear_forward<T>(y, x, w, b, rows, in, out_local);
  } else {  // y = x W^T
    gemm<T>({Trans::No, Trans::Yes, rows, out_local, in, in, in, out_local}, T(1), x.data(), w.data(), T(0), y.data());
  }
}

template <class T>
void TensorParallel<T>::column_linear_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy,
                                               const Vec<T>& x, const Vec<T>& w, int rows, int in, int out_local) {
  if (db.extent(0) > 0) {
    linear_backward<T>(dx, dw, db, dy, x, w, rows, in, out_local);
  } else {
    gemm<T>({Trans::No, Trans::No, rows, in, out_local, out_local, in, in}, T(1), dy.data(), w.data(), T(0), dx.data());
    gemm<T>({Trans::Yes, Trans::No, out_local, in, rows, out_local, in, in}, T(1), dy.data(), x.data(), T(1),
            dw.data());
  }
  copy_backward(view_of(dx.data(), size_t(rows) * in));
}

template <class T>
void TensorParallel<T>::row_linear_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int rows,
                                           int in_local, int out, const Vec<T>& residual) {
  const bool has_residual = residual.extent(0) > 0;
  if (!group_) {
    // Fused: one GEMM accumulating into residual + b (or into b).
    linear_forward<T>(y, x, w, b, rows, in_local, out, has_residual ? &residual : nullptr);
    return;
  }
  const size_t n = size_t(rows) * out;
  if (partial_.extent(0) < n) partial_ = Vec<T>("strata::tensor_parallel::partial", n);
  const Vec<T> partial = view_of(partial_.data(), n);
  gemm<T>({Trans::No, Trans::Yes, rows, out, in_local, in_local, in_local, out}, T(1), x.data(), w.data(), T(0),
          partial.data());
  reduce_forward(partial);
  if (has_residual) {
    residual_bias_add<T>(y, residual, b, partial, rows, out);
  } else {
    broadcast_rows<T>(y, b, rows, out);
    accumulate<T>(y, partial, n);
  }
}

template <class T>
void TensorParallel<T>::column_conv2d_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b,
                                              const Conv2dShape& s, const Vec<T>& workspace) {
  conv2d_forward<T>(y, x, w, b, s, workspace);  // the input is replicated: nothing to communicate
}

template <class T>
void TensorParallel<T>::column_conv2d_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy,
                                               const Vec<T>& x, const Vec<T>& w, const Conv2dShape& s,
                                               const Vec<T>& workspace) {
  conv2d_backward<T>(dx, dw, db, dy, x, w, s, workspace);
  if (dx.extent(0) > 0) copy_backward(dx);  // each rank's output channels contribute to the whole input's gradient
}

template <class T>
void TensorParallel<T>::row_conv2d_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b,
                                           const Conv2dShape& s, const Vec<T>& workspace) {
  // The bias joins the sum once, from rank 0's partial output (as the sharded embedding adds the positions).
  conv2d_forward<T>(y, x, w, rank_ == 0 ? b : Vec<T>(), s, workspace);
  reduce_forward(view_of(y.data(), size_t(s.output_size())));
}

template <class T>
void TensorParallel<T>::row_conv2d_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy,
                                            const Vec<T>& x, const Vec<T>& w, const Conv2dShape& s,
                                            const Vec<T>& workspace) {
  conv2d_backward<T>(dx, dw, db, dy, x, w, s, workspace);  // the input was this rank's slice: no sum
}

template <class T>
void TensorParallel<T>::row_linear_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy,
                                            const Vec<T>& x, const Vec<T>& w, int rows, int in_local, int out) {
  linear_backward<T>(dx, dw, db, dy, x, w, rows, in_local, out);  // the input was this rank's slice: no sum
}

template <class T>
void TensorParallel<T>::vocab_embedding_forward(const Vec<T>& out, const Vec<const int32_t>& tokens, const Vec<T>& wte,
                                                const Vec<T>& wpe, int batch, int seq, int channels, int vocab_local) {
  if (!group_) {
    embedding_forward<T>(out, tokens, wte, wpe, batch, seq, channels);
    return;
  }
  // Rows of tokens outside this rank's slice stay 0; positions are added once (by rank 0) before the sum.
  embedding_forward_sharded<T>(out, tokens, wte, wpe, batch, seq, channels, int64_t(rank_) * vocab_local, vocab_local,
                               rank_ == 0);
  reduce_forward(out);
}

template <class T>
void TensorParallel<T>::vocab_embedding_backward(const Vec<T>& dwte, const Vec<T>& dwpe,
                                                 const Vec<const int32_t>& tokens, const Vec<T>& dout, int batch,
                                                 int seq, int channels, int vocab_local) {
  if (!group_) {
    embedding_backward<T>(dwte, dwpe, tokens, dout, batch, seq, channels);
    return;
  }
  embedding_backward_tokens_sharded<T>(dwte, tokens, dout, batch, seq, channels, int64_t(rank_) * vocab_local,
                                       vocab_local);
  embedding_backward_positions<T>(dwpe, dout, batch, seq, channels);
}

template <class T>
void TensorParallel<T>::vocab_cross_entropy_forward(const Vec<T>& losses, const Vec<T>& lse, const Vec<T>& logits,
                                                    const Vec<const int32_t>& targets, int rows, int vocab_local) {
  if (!group_) {
    cross_entropy_forward<T>(losses, lse, logits, targets, rows, vocab_local);
    return;
  }
  // Combine the ranks' row maximum, sum of exponentials and target logit (0 from ranks without the target).
  ensure_rows(rows);
  const size_t n = size_t(rows);
  const Vec<T> mx = view_of(row_max_.data(), n), sum_exp = view_of(row_sum_.data(), n),
               picked = view_of(row_picked_.data(), n);
  vp_row_max<T>(mx, logits, rows, vocab_local);
  Kokkos::fence();
  const auto start = Clock::now();
  group_->all_reduce_max(mx.data(), n);
  comm_ms_ += ms_since(start);
  vp_row_sum_exp<T>(sum_exp, logits, mx, rows, vocab_local);
  sum(sum_exp);
  vp_target_logit<T>(picked, logits, targets, rows, vocab_local, int64_t(rank_) * vocab_local);
  sum(picked);
  vp_finish<T>(losses, lse, mx, sum_exp, picked, rows);
}

template <class T>
void TensorParallel<T>::vocab_cross_entropy_backward(const Vec<T>& logits, const Vec<T>& lse,
                                                     const Vec<const int32_t>& targets, int rows, int vocab_local,
                                                     T dloss) {
  if (!group_)
    cross_entropy_backward<T>(logits, lse, targets, rows, vocab_local, dloss);
  else
    vp_backward<T>(logits, lse, targets, rows, vocab_local, int64_t(rank_) * vocab_local, dloss);
}

template <class T>
void TensorParallel<T>::vocab_distillation_forward(const Vec<T>& losses, const Vec<T>& stats, const Vec<T>& logits,
                                                   const Vec<T>& teacher, int rows, int vocab_local, T temperature,
                                                   T alpha) {
  const size_t n = size_t(rows);
  distillation_vp_row_max<T>(stats, logits, teacher, rows, vocab_local);
  if (group_) {
    Kokkos::fence();
    const auto start = Clock::now();
    group_->all_reduce_max(stats.data(), 2 * n);  // the student's and the teacher's row maxima
    comm_ms_ += ms_since(start);
  }
  distillation_vp_row_sums<T>(stats, logits, teacher, rows, vocab_local, temperature);
  if (group_) sum(view_of(stats.data() + 2 * n, 2 * n));
  ensure_rows(rows);
  const Vec<T> kl = view_of(row_picked_.data(), n);
  distillation_vp_kl<T>(kl, stats, logits, teacher, rows, vocab_local, temperature);
  if (group_) sum(kl);
  distillation_vp_finish<T>(losses, kl, rows, temperature, alpha);
}

template <class T>
void TensorParallel<T>::vocab_distillation_soft_gradient(const Vec<T>& grad, const Vec<T>& stats, const Vec<T>& logits,
                                                         const Vec<T>& teacher, int rows, int vocab_local,
                                                         T temperature, T alpha, T scale) {
  distillation_vp_soft_gradient<T>(grad, stats, logits, teacher, rows, vocab_local, temperature, alpha, scale);
}

template <class T>
std::vector<double> TensorParallel<T>::gather_row(const Vec<T>& logits, int64_t row, int vocab_local) {
  const int64_t V = vocab_local;
  auto slice = Kokkos::subview(logits, std::make_pair(size_t(row * V), size_t((row + 1) * V)));
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), slice);
  std::vector<double> mine(host.data(), host.data() + V);
  if (!group_) return mine;
  std::vector<double> all(size_t(V) * size_);
  host_group_->all_gather(mine.data(), all.data(), size_t(V));
  return all;
}

template class TensorParallel<float>;
template class TensorParallel<double>;

}  // namespace strata
