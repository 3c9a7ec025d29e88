#include "train/generate.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/rng.hpp"

namespace strata {

template <class T>
std::vector<int32_t> generate(Gpt<T>& model, std::vector<int32_t> context, int64_t count, double temperature,
                              uint64_t seed) {
  STRATA_CHECK(model.batch() == 1, "generate: the model must have batch 1, has {}", model.batch());
  STRATA_CHECK(!context.empty(), "generate: empty prompt");
  const int Tn = model.config().seq_len, V = model.config().vocab_size;
  const uint64_t key = rng::make_key(seed, "generate");
  Vec<int32_t> tokens("strata::generate::tokens", Tn);
  auto host = Kokkos::create_mirror_view(tokens);
  std::vector<int32_t> out;
  std::vector<double> probs(V);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t len = std::min<int64_t>(int64_t(context.size()), Tn);
    const int32_t* window = context.data() + context.size() - len;
    for (int t = 0; t < Tn; ++t) host(t) = t < len ? window[t] : 0;  // causal: padding never reaches position len-1
    Kokkos::deep_copy(tokens, host);
    model.forward_logits(tokens);
    const auto logits = model.full_logits_row(len - 1);  // every tp rank takes part
    double mx = logits[0];
    for (int v = 1; v < V; ++v) mx = std::max(mx, logits[v]);
    double sum = 0;
    for (int v = 0; v < V; ++v) sum += probs[v] = std::exp((logits[v] - mx) / temperature);
    double u = rng::uniform(key, uint64_t(i)) * sum;
    int32_t pick = V - 1;
    for (int v = 0; v < V; ++v) {
      u -= probs[v];
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

template std::vector<int32_t> generate<float>(Gpt<float>&, std::vector<int32_t>, int64_t, double, uint64_t);
template std::vector<int32_t> generate<double>(Gpt<double>&, std::vector<int32_t>, int64_t, double, uint64_t);

}  // namespace strata
