#include "train/evaluate.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace strata {

template <class T>
EvalResult evaluate(PipelineRunner<T>& runner, Model<T>& model, const data::WindowSource& split, int64_t max_batches,
                    int global_batch, Communicator& dp) {
  const int micro = model.batch(), Tn = split.seq_len();
  STRATA_CHECK(global_batch % (micro * dp.size()) == 0, "evaluate: batch {} does not split into {} ranks x {}",
               global_batch, dp.size(), micro);
  const int64_t whole_batches = split.num_windows() / global_batch;
  const int64_t batches = max_batches > 0 ? std::min(max_batches, whole_batches) : whole_batches;
  const int64_t chunks = batches * global_batch / micro;
  const int64_t mine = chunks > dp.rank() ? (chunks - dp.rank() + dp.size() - 1) / dp.size() : 0;
  std::vector<int32_t> hx(size_t(micro) * Tn), hy(size_t(micro) * Tn);
  auto load = [&](int m, MicroBatch<T>& batch) {
    const int64_t c = dp.rank() + int64_t(m) * dp.size();
    for (int j = 0; j < micro; ++j)
      split.read_window(c * micro + j, hx.data() + size_t(j) * Tn, hy.data() + size_t(j) * Tn);
    Kokkos::deep_copy(batch.tokens, HostVec<int32_t>(hx.data(), hx.size()));
    Kokkos::deep_copy(batch.targets, HostVec<int32_t>(hy.data(), hy.size()));
  };
  // Sum over this rank's chunks of (mean chunk loss * chunk windows), on the last stage.
  double total = runner.forward_only(int(mine), load, /*with_loss=*/true);
  runner.group().all_reduce_sum(&total, 1);
  dp.all_reduce_sum(&total, 1);
  EvalResult r;
  r.tokens = batches * global_batch * Tn;
  r.loss = batches > 0 ? total / double(batches * global_batch) : 0.0;
  return r;
}

template EvalResult evaluate<float>(PipelineRunner<float>&, Model<float>&, const data::WindowSource&, int64_t, int,
                                    Communicator&);
template EvalResult evaluate<double>(PipelineRunner<double>&, Model<double>&, const data::WindowSource&, int64_t, int,
                                     Communicator&);

}  // namespace strata
