#include "train/evaluate.hpp"

#include <algorithm>
#include <vector>

namespace strata {

template <class T>
EvalResult evaluate(Gpt<T>& model, const data::WindowSource& split, int64_t max_batches) {
  const int B = model.batch(), Tn = model.config().seq_len;
  const int64_t available = split.num_windows() / B;  // whole batches only: the model's batch size is fixed
  const int64_t batches = max_batches > 0 ? std::min(max_batches, available) : available;
  Vec<int32_t> x("strata::eval::x", size_t(B) * Tn), y("strata::eval::y", size_t(B) * Tn);
  auto hx = Kokkos::create_mirror_view(x);
  auto hy = Kokkos::create_mirror_view(y);
  double total = 0;
  for (int64_t b = 0; b < batches; ++b) {
    for (int j = 0; j < B; ++j) split.read_window(b * B + j, hx.data() + size_t(j) * Tn, hy.data() + size_t(j) * Tn);
    Kokkos::deep_copy(x, hx);
    Kokkos::deep_copy(y, hy);
    total += double(model.forward(x, y));
  }
  EvalResult r;
  r.tokens = batches * B * Tn;
  r.loss = batches > 0 ? total / double(batches) : 0.0;
  return r;
}

template EvalResult evaluate<float>(Gpt<float>&, const data::WindowSource&, int64_t);
template EvalResult evaluate<double>(Gpt<double>&, const data::WindowSource&, int64_t);

}  // namespace strata
