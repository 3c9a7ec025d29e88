#include "train/evaluate.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "data/array_batches.hpp"
#include "train/training_data.hpp"

namespace strata {

namespace {

// The windows a language-model evaluation reads: the first `batches` whole global batches of the split in order,
// chunk c of model.batch() windows on dp rank c % dp; load() fills the microbatch of this rank's m-th chunk (its
// targets stay in hy until the next load).
struct WindowChunks {
  const data::WindowSource& split;
  int micro, seq, rank, ranks;
  int64_t batches, chunks, mine;
  std::vector<int32_t> hx, hy;

  WindowChunks(const data::WindowSource& s, int micro_batch, int64_t max_batches, int global_batch, Communicator& dp)
      : split(s), micro(micro_batch), seq(s.seq_len()), rank(dp.rank()), ranks(dp.size()) {
    STRATA_CHECK(global_batch % (micro * ranks) == 0, "evaluate: batch {} does not split into {} ranks x {}",
                 global_batch, ranks, micro);
    const int64_t whole_batches = split.num_windows() / global_batch;
    batches = max_batches > 0 ? std::min(max_batches, whole_batches) : whole_batches;
    chunks = batches * global_batch / micro;
    mine = chunks > rank ? (chunks - rank + ranks - 1) / ranks : 0;
    hx.resize(size_t(micro) * size_t(seq));
    hy.resize(size_t(micro) * size_t(seq));
  }
  int64_t chunk_of(int m) const { return rank + int64_t(m) * ranks; }
  template <class T>
  void load(int m, MicroBatch<T>& batch) {
    const int64_t c = chunk_of(m);
    for (int j = 0; j < micro; ++j)
      split.read_window(c * micro + j, hx.data() + size_t(j) * seq, hy.data() + size_t(j) * seq);
    Kokkos::deep_copy(batch.tokens, HostVec<int32_t>(hx.data(), hx.size()));
    Kokkos::deep_copy(batch.targets, HostVec<int32_t>(hy.data(), hy.size()));
  }
};

}  // namespace

template <class T>
EvalResult evaluate(PipelineRunner<T>& runner, Model<T>& model, const data::WindowSource& split, int64_t max_batches,
                    int global_batch, Communicator& dp) {
  WindowChunks w(split, model.batch(), max_batches, global_batch, dp);
  // Sum over this rank's chunks of (mean chunk loss * chunk windows), on the last stage.
  double total = runner.forward_only(
      int(w.mine), [&](int m, MicroBatch<T>& batch) { w.load(m, batch); }, /*with_loss=*/true);
  runner.group().all_reduce_sum(&total, 1);
  dp.all_reduce_sum(&total, 1);
  EvalResult r;
  r.tokens = w.batches * global_batch * w.seq;
  r.loss = w.batches > 0 ? total / double(w.batches * global_batch) : 0.0;
  return r;
}

std::vector<double> target_log_probs(PipelineRunner<float>& runner, Model<float>& model,
                                     const data::WindowSource& split, int64_t max_batches, int global_batch,
                                     Communicator& dp) {
  STRATA_CHECK(model.placement().tp_size == 1, "target_log_probs: a whole model per rank (no tensor parallelism)");
  const int64_t V = model.classes();
  WindowChunks w(split, model.batch(), max_batches, global_batch, dp);
  const size_t rows = size_t(w.micro) * size_t(w.seq);
  std::vector<double> logp(size_t(w.chunks) * rows, 0.0);
  runner.forward_only(
      int(w.mine), [&](int m, MicroBatch<float>& batch) { w.load(m, batch); }, /*with_loss=*/false,
      [&](int m, int slot) {
        auto logits = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.logits(slot));
        const size_t first = size_t(w.chunk_of(m)) * rows;
        for (size_t r = 0; r < rows; ++r) {
          const float* z = logits.data() + r * size_t(V);
          const double top = *std::max_element(z, z + V);
          double sum = 0;
          for (int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - top);
          logp[first + r] = double(z[w.hy[r]]) - top - std::log(sum);
        }
      });
  runner.group().all_reduce_sum(logp.data(), logp.size());
  dp.all_reduce_sum(logp.data(), logp.size());
  return logp;
}

ClassifierEvalResult evaluate_classifier(PipelineRunner<float>& runner, Model<float>& model,
                                         const data::ArraySplit& split, bool normalize, int64_t max_samples,
                                         Communicator& dp, bool keep_predictions) {
  const int micro = model.batch(), C = int(model.classes());
  const int64_t R = model.targets_per_sample();
  const int64_t n = max_samples > 0 ? std::min(max_samples, split.num_samples()) : split.num_samples();
  STRATA_CHECK(split.sample_elems() == model.inputs_per_sample() && split.label_elems() == R,
               "evaluate: {} holds samples of {} values with {} labels, the model reads {} and predicts {}",
               split.describe(), split.sample_elems(), split.label_elems(), model.inputs_per_sample(), R);
  const int64_t chunks = (n + micro - 1) / micro;
  const int64_t mine = chunks > dp.rank() ? (chunks - dp.rank() + dp.size() - 1) / dp.size() : 0;
  const auto& manifest = split.manifest();
  data::ChannelStats stats{manifest.mean, manifest.std};
  HostBatch host;
  host.features.resize(size_t(micro) * size_t(split.sample_elems()));
  host.targets.resize(size_t(micro) * size_t(R));
  std::vector<int64_t> indices(static_cast<size_t>(micro));
  auto first_sample = [&](int m) { return (dp.rank() + int64_t(m) * dp.size()) * micro; };
  auto load = [&](int m, MicroBatch<float>& batch) {
    const int64_t first = first_sample(m);
    for (int j = 0; j < micro; ++j) indices[size_t(j)] = first + j < n ? first + j : first;  // pad with the first
    split.read(indices.data(), micro, host.features.data(), host.targets.data());
    if (normalize) data::normalize_samples(manifest, stats, host.features.data(), micro);
    load_microbatch(host, 0, micro, batch);
  };
  ClassificationCounts counts(C);
  ClassifierEvalResult result;
  std::vector<double> predicted, targets, scores;
  if (keep_predictions) {
    predicted.assign(size_t(n * R), 0.0);
    targets.assign(size_t(n * R), 0.0);
    scores.assign(size_t(n * R) * size_t(C), 0.0);
  }
  runner.forward_only(int(mine), load, /*with_loss=*/false, [&](int m, int slot) {
    const int64_t first = first_sample(m), valid = std::min<int64_t>(micro, n - first);
    auto logits = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.logits(slot));
    counts.add(logits.data(), host.targets.data(), valid * R);
    if (!keep_predictions) return;
    for (int64_t r = 0; r < valid * R; ++r) {
      const float* row = logits.data() + r * C;
      const size_t at = size_t(first * R + r);
      predicted[at] = double(std::max_element(row, row + C) - row);
      targets[at] = double(host.targets[size_t(r)]);
      for (int c = 0; c < C; ++c) scores[at * size_t(C) + size_t(c)] = double(row[c]);
    }
  });
  // Only the last stage counted: sum over the pipeline, then over the data-parallel ranks.
  counts.all_reduce(runner.group());
  counts.all_reduce(dp);
  result.metrics = classification_metrics(counts);
  if (keep_predictions) {
    for (auto* v : {&predicted, &targets, &scores}) {
      runner.group().all_reduce_sum(v->data(), v->size());
      dp.all_reduce_sum(v->data(), v->size());
    }
    result.predicted.assign(predicted.begin(), predicted.end());
    result.targets.assign(targets.begin(), targets.end());
    result.scores.assign(scores.begin(), scores.end());
  }
  return result;
}

template EvalResult evaluate<float>(PipelineRunner<float>&, Model<float>&, const data::WindowSource&, int64_t, int,
                                    Communicator&);
template EvalResult evaluate<double>(PipelineRunner<double>&, Model<double>&, const data::WindowSource&, int64_t, int,
                                     Communicator&);

}  // namespace strata
