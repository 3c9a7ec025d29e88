#include "train/evaluate.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace strata {

template <class T>
EvalResult evaluate(Gpt<T>& model, const data::WindowSource& split, int64_t max_batches, int global_batch,
                    Communicator& dp) {
  const int micro = model.batch(), Tn = model.config().seq_len;
  STRATA_CHECK(global_batch % (micro * dp.size()) == 0, "evaluate: batch {} does not split into {} ranks x {}",
               global_batch, dp.size(), micro);
  const int64_t whole_batches = split.num_windows() / global_batch;
  const int64_t batches = max_batches > 0 ? std::min(max_batches, whole_batches) : whole_batches;
  const int64_t chunks = batches * global_batch / micro;
  Vec<int32_t> x("strata::eval::x", size_t(micro) * Tn), y("strata::eval::y", size_t(micro) * Tn);
  auto hx = Kokkos::create_mirror_view(x);
  auto hy = Kokkos::create_mirror_view(y);
  double total = 0;  // sum over this rank's chunks of (mean chunk loss * chunk windows)
  for (int64_t c = dp.rank(); c < chunks; c += dp.size()) {
    for (int j = 0; j < micro; ++j)
      split.read_window(c * micro + j, hx.data() + size_t(j) * Tn, hy.data() + size_t(j) * Tn);
    Kokkos::deep_copy(x, hx);
    Kokkos::deep_copy(y, hy);
    total += double(model.forward(x, y)) * micro;
  }
  dp.all_reduce_sum(&total, 1);
  EvalResult r;
  r.tokens = batches * global_batch * Tn;
  r.loss = batches > 0 ? total / double(batches * global_batch) : 0.0;
  return r;
}

template EvalResult evaluate<float>(Gpt<float>&, const data::WindowSource&, int64_t, int, Communicator&);
template EvalResult evaluate<double>(Gpt<double>&, const data::WindowSource&, int64_t, int, Communicator&);

}  // namespace strata
