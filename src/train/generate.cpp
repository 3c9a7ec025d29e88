#include "train/generate.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace strata {

template <class T>
std::vector<int32_t> generate(PipelineRunner<T>& runner, Model<T>& model, TensorParallel<T>& tp,
                              std::vector<int32_t> context, int64_t count, double temperature, uint64_t seed) {
  STRATA_CHECK(model.batch() == 1, "generate: the model must have batch 1, has {}", model.batch());
  STRATA_CHECK(model.token_inputs(), "generate: the model does not read tokens (not a language model)");
  STRATA_CHECK(!context.empty(), "generate: empty prompt");
  const int Tn = int(model.inputs_per_sample()), V = int(model.classes());
  const uint64_t key = rng::make_key(seed, "generate");
  std::vector<int32_t> window(static_cast<size_t>(Tn)), out;
  std::vector<double> probs(static_cast<size_t>(V)), logits(static_cast<size_t>(V));
  const Placement& placement = model.placement();
  Communicator& pp = runner.group();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t len = std::min<int64_t>(int64_t(context.size()), Tn);
    const int32_t* last = context.data() + context.size() - len;
    for (int t = 0; t < Tn; ++t) window[size_t(t)] = t < len ? last[t] : 0;  // causal: padding never reaches len-1
    auto load = [&](int, MicroBatch<T>& batch) {
      Kokkos::deep_copy(batch.tokens, HostVec<int32_t>(window.data(), window.size()));
    };
    runner.forward_only(1, load, /*with_loss=*/false, [&](int, int slot) {
      logits = tp.gather_row(model.logits(slot), len - 1, V / tp.size());  // every tp rank takes part
    });
    pp.broadcast(logits.data(), logits.size() * sizeof(double), placement.stages - 1);
    double mx = logits[0];
    for (int v = 1; v < V; ++v) mx = std::max(mx, logits[size_t(v)]);
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += probs[size_t(v)] = std::exp((logits[size_t(v)] - mx) / temperature);
    double u = rng::uniform(key, uint64_t(i)) * sum;
    int32_t pick = V - 1;
    for (int v = 0; v < V; ++v) {
      u -= probs[size_t(v)];
      if (u <= 0) {
        pick = v;
        break;
      }
    }
    out.push_back(pick);
    context.push_back(pick);
  }
  return out;
}

template std::vector<int32_t> generate<float>(PipelineRunner<float>&, Model<float>&, TensorParallel<float>&,
                                              std::vector<int32_t>, int64_t, double, uint64_t);
template std::vector<int32_t> generate<double>(PipelineRunner<double>&, Model<double>&, TensorParallel<double>&,
                                               std::vector<int32_t>, int64_t, double, uint64_t);

}  // namespace strata
