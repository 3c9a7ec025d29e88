#pragma once
// Tensor parallelism as Megatron-LM writes it (DESIGN.md principle 6): named forward/backward pairs that a model
// calls in place of the plain layer. Each pair's communication is the swap of the other's: "copy" (forward uses a
// replicated input as is; backward sums the input's gradient over the group) and "reduce" (forward sums partial
// outputs; backward passes the gradient on unchanged). Column-parallel linears split the output features,
// row-parallel ones the input features; the embedding and the cross-entropy split the vocabulary.
// On a group of one rank (or none) every pair is exactly the plain layer: no communication, no extra work, the
// same arithmetic, so a model has one code path for any tp.
#include <vector>

#include "comm/communicator.hpp"
#include "kernels/common.hpp"
#include "kernels/conv2d.hpp"

namespace strata {

template <class T>
class TensorParallel {
 public:
  // group carries the device buffers; host_group (the same ranks, for gather_row's host values) defaults to it.
  explicit TensorParallel(Communicator* group = nullptr, Communicator* host_group = nullptr);

  int rank() const { return rank_; }
  int size() const { return size_; }

  // ---- The two mappings.
  // "copy to the region": forward identity; backward sums grad[n] over the group, in place.
  void copy_backward(const Vec<T>& grad);
  // "reduce from the region": forward sums x[n] over the group, in place; backward identity.
  void reduce_forward(const Vec<T>& x);

  // ---- Column-parallel linear: W [O/tp, I] holds this rank's output features; the input is replicated.
  // y[N, O/tp] = x[N, I] W^T + b[O/tp] (b may be empty: no bias).
  void column_linear_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int rows, int in,
                             int out_local);
  // dx[N, I] = sum over the group of dy W (overwritten); dW += dy^T x; db += column sums of dy.
  void column_linear_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                              const Vec<T>& w, int rows, int in, int out_local);

  // ---- Row-parallel linear with the residual add: W [O, I/tp] holds this rank's input features, b [O] is
  // replicated. y[N, O] = residual[N, O] + b + sum over the group of x[N, I/tp] W^T (an empty residual: none).
  void row_linear_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, int rows, int in_local,
                          int out, const Vec<T>& residual);
  // dx[N, I/tp] = dy W (overwritten); dW += dy^T x; db += column sums of dy (the same on every rank).
  void row_linear_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                           const Vec<T>& w, int rows, int in_local, int out);

  // ---- Convolutions split over channels (the CNN's blocks alternate, as Megatron's MLP pairs its linears).
  // Column-parallel: W [O/tp, C, k, k] and b [O/tp] hold this rank's output channels; x [B, C, H, W] is replicated;
  // y [B, O/tp, Ho, Wo]. `s` is the local convolution (out_channels = O/tp). workspace: conv2d_workspace_size(s).
  void column_conv2d_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, const Conv2dShape& s,
                             const Vec<T>& workspace);
  // dx [B, C, H, W] = sum over the group of the local input gradients (empty dx: skipped); dW, db +=.
  void column_conv2d_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                              const Vec<T>& w, const Conv2dShape& s, const Vec<T>& workspace);
  // Row-parallel: W [O, C/tp, k, k] holds this rank's input channels, x [B, C/tp, H, W] is this rank's slice, b [O]
  // is replicated; y [B, O, Ho, Wo] = b + sum over the group of the partial convolutions. `s`: in_channels = C/tp.
  void row_conv2d_forward(const Vec<T>& y, const Vec<T>& x, const Vec<T>& w, const Vec<T>& b, const Conv2dShape& s,
                          const Vec<T>& workspace);
  // dx [B, C/tp, H, W] (no sum: the input was this rank's slice); dW +=; db += (the same on every rank).
  void row_conv2d_backward(const Vec<T>& dx, const Vec<T>& dw, const Vec<T>& db, const Vec<T>& dy, const Vec<T>& x,
                           const Vec<T>& w, const Conv2dShape& s, const Vec<T>& workspace);

  // ---- Vocabulary-parallel embedding: wte [V/tp, C] holds this rank's vocabulary slice, wpe [>= T, C] replicated.
  // out[B*T, C] = wte[token] + wpe[t], each token's row coming from the rank that holds it (summed over the group).
  void vocab_embedding_forward(const Vec<T>& out, const Vec<const int32_t>& tokens, const Vec<T>& wte,
                               const Vec<T>& wpe, int batch, int seq, int channels, int vocab_local);
  // dwte += this rank's tokens' rows of dout[B*T, C]; dwpe += dout summed over the batch.
  void vocab_embedding_backward(const Vec<T>& dwte, const Vec<T>& dwpe, const Vec<const int32_t>& tokens,
                                const Vec<T>& dout, int batch, int seq, int channels, int vocab_local);

  // ---- Vocabulary-parallel softmax cross-entropy over logits[N, V/tp] (this rank's vocabulary slice):
  // losses[N] = logsumexp over the whole vocabulary - the target's logit; lse[N] kept for backward.
  void vocab_cross_entropy_forward(const Vec<T>& losses, const Vec<T>& lse, const Vec<T>& logits,
                                   const Vec<const int32_t>& targets, int rows, int vocab_local);
  // In place: logits become dlogits = (softmax - onehot(target)) * dloss on this rank's slice.
  void vocab_cross_entropy_backward(const Vec<T>& logits, const Vec<T>& lse, const Vec<const int32_t>& targets,
                                    int rows, int vocab_local, T dloss);

  // ---- Distillation over vocabulary-parallel logits (kernels/distillation.hpp): teacher [N, V/tp] holds the same
  // columns of the teacher's logits. losses[N] (in: the hard losses; out: (1 - a) hard + a T^2 KL(q_t || q_s) over
  // the whole vocabulary); stats [4N] keeps the rows' statistics for the soft gradient.
  void vocab_distillation_forward(const Vec<T>& losses, const Vec<T>& stats, const Vec<T>& logits,
                                  const Vec<T>& teacher, int rows, int vocab_local, T temperature, T alpha);
  // grad[N, V/tp] = scale a T (q_s - q_t) on this rank's slice.
  void vocab_distillation_soft_gradient(const Vec<T>& grad, const Vec<T>& stats, const Vec<T>& logits,
                                        const Vec<T>& teacher, int rows, int vocab_local, T temperature, T alpha,
                                        T scale);

  // One row of vocabulary-parallel logits [N, V/tp] gathered over the group: the whole row [V], on every rank.
  std::vector<double> gather_row(const Vec<T>& logits, int64_t row, int vocab_local);

  // Milliseconds spent in the group's communication since the last call (and resets the count).
  double take_comm_ms();

 private:
  void sum(const Vec<T>& v);
  void ensure_rows(int rows);
  Communicator* group_;
  Communicator* host_group_;
  int rank_ = 0, size_ = 1;
  Vec<T> partial_, row_max_, row_sum_, row_picked_;  // scratch: row-parallel products, cross-entropy row reductions
  double comm_ms_ = 0;
};

}  // namespace strata
