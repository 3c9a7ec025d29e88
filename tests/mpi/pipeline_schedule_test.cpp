// PipelineRunner (parallel/pipeline_schedule.hpp) with one stage per rank (pp = world size: np 1, 2, 4, 8) on a
// fake model: a chain of stages, stage s computing y = a_s * x + b_s elementwise on each sample's n values, the
// last stage's loss being, per sample (target row) i, the mean over k of (y_ik - c_i)^2 with c_i from the
// target. a_s and b_s live in a ParamBuffer and backward adds real gradients. The model records the order of
// its forward and backward calls (with microbatch ids), the slots they use, and the gradient-ready reports.
// Checked: the GPipe and 1F1B orders on every stage, the live microbatches per stage (min(M, stages - stage) for
// 1F1B, M for GPipe), the loss sum and every stage's gradients against one process running the whole chain, and
// forward_only.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.hpp"
#include "core/error.hpp"
#include "nn/model.hpp"
#include "nn/param_buffer.hpp"
#include "parallel/pipeline_schedule.hpp"

namespace strata {
namespace {

constexpr int kN = 3;      // values per sample
constexpr int kBatch = 2;  // samples per microbatch

double a_value(int stage, int k) { return 0.9 + 0.05 * std::sin(1.0 + stage + 0.7 * k); }
double b_value(int stage, int k) { return 0.1 * std::cos(2.0 * stage + k); }
double feature(int m, int i, int k) { return std::sin(1.0 + m + 0.3 * i + 0.7 * k); }
int32_t target(int m, int i) { return (3 * m + i) % 5; }
double target_value(int32_t t) { return 0.1 * t; }

struct Event {
  char kind;  // 'F' or 'B'
  int micro, slot;
  bool operator==(const Event& o) const { return kind == o.kind && micro == o.micro && slot == o.slot; }
};

std::vector<TensorSpec> chain_specs() {
  std::vector<TensorSpec> specs(2);
  specs[0].name = "a", specs[1].name = "b";
  for (auto& s : specs) {
    s.shape = s.global_shape = {kN};
    s.shard = ShardMap{-1, 1, 0, 1, kN, 1};
  }
  return specs;
}

template <class T>
std::vector<double> host(const Vec<T>& v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.extent(0));
}
template <class T>
void store(const Vec<T>& v, const std::vector<double>& values) {
  auto h = Kokkos::create_mirror_view(v);
  for (size_t i = 0; i < values.size(); ++i) h(i) = T(values[i]);
  Kokkos::deep_copy(v, h);
}

// One stage of the chain. The microbatch id comes from the targets the loader fills on every stage (all equal
// to m * 100 + row's target), kept per slot from forward to backward.
template <class T>
class ChainStage final : public Model<T> {
 public:
  ChainStage(const Placement& p, std::shared_ptr<ParamBuffer<T>> params) : Model<T>(p, kBatch, std::move(params)) {
    input_grad_ = Vec<T>("chain::input_grad", size_t(kBatch * kN));
  }
  bool token_inputs() const override { return false; }
  int64_t inputs_per_sample() const override { return kN; }
  int64_t targets_per_sample() const override { return 1; }
  int64_t classes() const override { return 2; }
  size_t stage_input_size() const override { return this->placement().first_stage() ? 0 : size_t(kBatch * kN); }
  size_t stage_output_size() const override { return this->placement().last_stage() ? 0 : size_t(kBatch * kN); }

  void forward_stage(int slot, const MicroBatch<T>& batch, const Vec<T>* input, bool with_loss) override {
    const auto targets = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), batch.targets);
    const int m = int(targets(0) / 100);
    events.push_back({'F', m, slot});
    while (int(slots_.size()) <= slot) slots_.push_back(Slot{});
    Slot& s = slots_[size_t(slot)];
    overwrites += s.busy;  // a slot still held for a backward (forward_only reuses slot 0 on purpose)
    s.busy = true, s.micro = m;
    live = int(std::count_if(slots_.begin(), slots_.end(), [](const Slot& x) { return x.busy; }));
    peak_live = std::max(peak_live, live);
    STRATA_CHECK(this->placement().first_stage() == (input == nullptr), "chain: input on stage {}",
                 this->placement().stage);
    s.x = host(input ? *input : batch.features);
    const auto a = host(this->params().param(0)), b = host(this->params().param(1));
    s.y.assign(s.x.size(), 0);
    for (size_t j = 0; j < s.x.size(); ++j) s.y[j] = a[j % kN] * s.x[j] + b[j % kN];
    if (!s.output.extent(0)) s.output = Vec<T>("chain::output", s.y.size());
    store(s.output, s.y);
    s.c.clear();
    for (int i = 0; i < kBatch; ++i) s.c.push_back(target_value(targets(i) % 100));
    if (this->placement().last_stage() && with_loss) {
      double sum = 0;
      for (size_t j = 0; j < s.y.size(); ++j) sum += (s.y[j] - s.c[j / kN]) * (s.y[j] - s.c[j / kN]) / kN;
      s.loss = sum / kBatch;
    } else {
      s.loss = NAN;
    }
  }
  const Vec<T>& stage_output(int slot) const override { return slots_.at(size_t(slot)).output; }
  T stage_loss(int slot) const override { return T(slots_.at(size_t(slot)).loss); }
  const Vec<T>& logits(int slot) const override { return slots_.at(size_t(slot)).output; }

  void backward_stage(int slot, T loss_scale, const Vec<T>* output_grad, const GradReadyHook& on_ready) override {
    Slot& s = slots_.at(size_t(slot));
    STRATA_CHECK(s.busy, "chain: backward of free slot {}", slot);
    events.push_back({'B', s.micro, slot});
    STRATA_CHECK(this->placement().last_stage() == (output_grad == nullptr), "chain: output_grad on stage {}",
                 this->placement().stage);
    std::vector<double> dy(s.y.size());
    if (output_grad) {
      dy = host(*output_grad);
    } else {
      const double scale = loss_scale == T(0) ? 1.0 / kBatch : double(loss_scale);
      for (size_t j = 0; j < dy.size(); ++j) dy[j] = scale * 2.0 * (s.y[j] - s.c[j / kN]) / kN;
    }
    const auto a = host(this->params().param(0));
    auto da = host(this->params().grad(0)), db = host(this->params().grad(1));
    std::vector<double> dx(dy.size());
    // b's gradients (the end of the buffer) first, then a's: reported as backward completes them.
    for (size_t j = 0; j < dy.size(); ++j) db[j % kN] += dy[j];
    store(this->params().grad(1), db);
    if (on_ready) on_ready(this->params().specs()[1].offset);
    for (size_t j = 0; j < dy.size(); ++j) {
      da[j % kN] += dy[j] * s.x[j];
      dx[j] = a[j % kN] * dy[j];
    }
    store(this->params().grad(0), da);
    if (on_ready) on_ready(0);
    store(input_grad_, dx);
    s.busy = false;
    --live;
  }
  const Vec<T>& input_grad() const override { return input_grad_; }
  int slots_allocated() const override { return int(slots_.size()); }

  std::vector<Event> events;
  int live = 0, peak_live = 0, overwrites = 0;

 private:
  struct Slot {
    bool busy = false;
    int micro = -1;
    std::vector<double> x, y, c;
    double loss = 0;
    Vec<T> output;
  };
  std::vector<Slot> slots_;
  Vec<T> input_grad_;
};

struct Reference {
  double loss_sum = 0;                              // sum over microbatches of mean loss x samples
  std::vector<std::vector<double>> grad_a, grad_b;  // per stage
};

// The whole chain in one process, in double.
Reference whole_chain(int stages, int micro, double loss_scale) {
  Reference ref;
  ref.grad_a.assign(size_t(stages), std::vector<double>(kN, 0.0));
  ref.grad_b = ref.grad_a;
  for (int m = 0; m < micro; ++m) {
    std::vector<std::vector<double>> xs;  // input of each stage
    std::vector<double> x(kBatch * kN);
    for (int i = 0; i < kBatch; ++i)
      for (int k = 0; k < kN; ++k) x[size_t(i * kN + k)] = feature(m, i, k);
    for (int s = 0; s < stages; ++s) {
      xs.push_back(x);
      for (size_t j = 0; j < x.size(); ++j) x[j] = a_value(s, int(j % kN)) * x[j] + b_value(s, int(j % kN));
    }
    double sum = 0;
    std::vector<double> dy(x.size());
    const double scale = loss_scale == 0 ? 1.0 / kBatch : loss_scale;
    for (size_t j = 0; j < x.size(); ++j) {
      const double d = x[j] - target_value(target(m, int(j / kN)));
      sum += d * d / kN;
      dy[j] = scale * 2.0 * d / kN;
    }
    ref.loss_sum += sum / kBatch * kBatch;
    for (int s = stages - 1; s >= 0; --s) {
      for (size_t j = 0; j < dy.size(); ++j) {
        ref.grad_a[size_t(s)][j % kN] += dy[j] * xs[size_t(s)][j];
        ref.grad_b[size_t(s)][j % kN] += dy[j];
        dy[j] *= a_value(s, int(j % kN));
      }
    }
  }
  return ref;
}

// The expected order of one stage's calls (microbatch ids; F forward, B backward).
std::vector<std::pair<char, int>> expected_order(PipelineSchedule schedule, int stage, int stages, int micro) {
  std::vector<std::pair<char, int>> order;
  if (schedule == PipelineSchedule::GPipe) {
    for (int m = 0; m < micro; ++m) order.push_back({'F', m});
    for (int m = 0; m < micro; ++m) order.push_back({'B', m});
    return order;
  }
  const int warmup = std::min(micro, stages - stage - 1);
  for (int m = 0; m < warmup; ++m) order.push_back({'F', m});  // warm-up forwards
  for (int i = 0; warmup + i < micro; ++i) {                   // one forward, one backward
    order.push_back({'F', warmup + i});
    order.push_back({'B', i});
  }
  for (int m = std::max(0, micro - warmup); m < micro; ++m) order.push_back({'B', m});  // cool-down backwards
  return order;
}

class PipelineSchedules : public ::testing::TestWithParam<PipelineSchedule> {
 protected:
  MpiCommunicator pp{MPI_COMM_WORLD};
  Placement placement() const { return Placement{0, 1, pp.rank(), pp.size()}; }

  std::unique_ptr<ChainStage<double>> make_stage() const {
    auto params = std::make_shared<ParamBuffer<double>>(chain_specs());
    std::vector<double> a, b;
    for (int k = 0; k < kN; ++k) a.push_back(a_value(pp.rank(), k)), b.push_back(b_value(pp.rank(), k));
    store(params->param(0), a);
    store(params->param(1), b);
    return std::make_unique<ChainStage<double>>(placement(), params);
  }
  static PipelineRunner<double>::Loader loader() {
    return [](int m, MicroBatch<double>& batch) {
      std::vector<double> f;
      for (int i = 0; i < kBatch; ++i)
        for (int k = 0; k < kN; ++k) f.push_back(feature(m, i, k));
      store(batch.features, f);
      auto t = Kokkos::create_mirror_view(batch.targets);
      for (int i = 0; i < kBatch; ++i) t(i) = m * 100 + target(m, i);
      Kokkos::deep_copy(batch.targets, t);
    };
  }
};

std::string name_of(PipelineSchedule s) { return s == PipelineSchedule::GPipe ? "gpipe" : "1f1b"; }

TEST_P(PipelineSchedules, OrderLiveMicrobatchesLossAndGradientsMatchOneProcess) {
  const PipelineSchedule schedule = GetParam();
  const int stage = pp.rank(), stages = pp.size();
  for (int micro : {1, 2, 5, 8}) {
    for (double loss_scale : {1.0 / (micro * kBatch), 0.0}) {
      const std::string at = name_of(schedule) + ", stage " + std::to_string(stage) + " of " + std::to_string(stages) +
                             ", " + std::to_string(micro) + " microbatches, loss_scale " + std::to_string(loss_scale);
      auto model = make_stage();
      PipelineRunner<double> runner(*model, pp, schedule);
      std::vector<std::pair<int64_t, size_t>> ready;  // (ready_from, backward calls so far)
      const GradReadyHook on_ready = [&](int64_t from) { ready.push_back({from, model->events.size()}); };
      const double loss_sum = runner.run(micro, loader(), loss_scale, on_ready);

      // Order: exactly the schedule's, with microbatch ids.
      std::vector<std::pair<char, int>> order;
      for (const auto& e : model->events) order.push_back({e.kind, e.micro});
      EXPECT_EQ(order, expected_order(schedule, stage, stages, micro)) << at;
      // Live microbatches (activations held from forward to backward) and slots.
      const int peak = schedule == PipelineSchedule::GPipe ? micro : std::min(micro, stages - stage);
      EXPECT_EQ(model->peak_live, peak) << at;
      EXPECT_EQ(runner.peak_slots(), peak) << at;
      EXPECT_EQ(model->slots_allocated(), peak) << at << ": slots are reused once free";
      EXPECT_EQ(model->live, 0) << at;
      EXPECT_EQ(model->overwrites, 0) << at << ": a forward overwrote activations still held for a backward";
      for (const auto& e : model->events) {
        const auto fwd = std::find(model->events.begin(), model->events.end(), Event{'F', e.micro, e.slot});
        EXPECT_NE(fwd, model->events.end()) << at << ": microbatch " << e.micro << " changed slot";
      }
      // The gradient-ready reports come from the last microbatch's backward only, from the end of the buffer.
      const std::vector<std::pair<int64_t, size_t>> expected_ready = {{kN, model->events.size()},
                                                                      {0, model->events.size()}};
      EXPECT_EQ(ready, expected_ready) << at;
      EXPECT_EQ(model->events.back().kind, 'B') << at;
      EXPECT_EQ(model->events.back().micro, micro - 1) << at;

      // Loss (last stage only) and this stage's gradients against the whole chain in one process.
      const Reference ref = whole_chain(stages, micro, loss_scale);
      if (model->placement().last_stage())
        EXPECT_NEAR(loss_sum, ref.loss_sum, 1e-12 * ref.loss_sum) << at;
      else
        EXPECT_EQ(loss_sum, 0.0) << at;
      const auto da = host(model->params().grad(0)), db = host(model->params().grad(1));
      for (int k = 0; k < kN; ++k) {
        EXPECT_NEAR(da[size_t(k)], ref.grad_a[size_t(stage)][size_t(k)], 1e-12) << at << ": da[" << k << "]";
        EXPECT_NEAR(db[size_t(k)], ref.grad_b[size_t(stage)][size_t(k)], 1e-12) << at << ": db[" << k << "]";
      }
    }
  }
}

TEST_P(PipelineSchedules, ForwardOnlyGivesTheLossAndOneOutputPerMicrobatchOnTheLastStage) {
  const PipelineSchedule schedule = GetParam();
  const int stages = pp.size();
  for (int micro : {1, 2, 5, 8}) {
    for (bool with_loss : {true, false}) {
      const std::string at = name_of(schedule) + ", stage " + std::to_string(pp.rank()) + ", " + std::to_string(micro) +
                             " microbatches" + (with_loss ? "" : ", no loss");
      auto model = make_stage();
      PipelineRunner<double> runner(*model, pp, schedule);
      std::vector<std::pair<int, int>> outputs;  // (m, slot)
      std::vector<double> last_values;
      const double loss_sum = runner.forward_only(micro, loader(), with_loss, [&](int m, int slot) {
        outputs.push_back({m, slot});
        // The slot holds microbatch m's logits now: the chain's output for it.
        last_values.push_back(host(model->logits(slot))[0]);
      });
      std::vector<std::pair<char, int>> order;
      for (const auto& e : model->events) order.push_back({e.kind, e.micro});
      std::vector<std::pair<char, int>> forwards;
      for (int m = 0; m < micro; ++m) forwards.push_back({'F', m});
      EXPECT_EQ(order, forwards) << at << ": forwards only, in order";
      if (model->placement().last_stage()) {
        std::vector<std::pair<int, int>> expected;
        for (int m = 0; m < micro; ++m) expected.push_back({m, 0});
        EXPECT_EQ(outputs, expected) << at;
        const Reference ref = whole_chain(stages, micro, 0);
        if (with_loss)
          EXPECT_NEAR(loss_sum, ref.loss_sum, 1e-12 * ref.loss_sum) << at;
        else
          EXPECT_EQ(loss_sum, 0.0) << at;
        // (No ASSERT here: returning early would leave the other stages waiting in the run below.)
        for (int m = 0; m < micro && size_t(m) < last_values.size(); ++m) {
          double x = feature(m, 0, 0);
          for (int s = 0; s < stages; ++s) x = a_value(s, 0) * x + b_value(s, 0);
          EXPECT_NEAR(last_values[size_t(m)], x, 1e-12) << at << ": microbatch " << m << "'s output";
        }
      } else {
        EXPECT_TRUE(outputs.empty()) << at << ": the output hook runs on the last stage only";
        EXPECT_EQ(loss_sum, 0.0) << at;
      }
      // A run's loss after evaluation is unchanged: forward_only kept no activations for a backward.
      const double train_loss = runner.run(micro, loader(), 0.0, {});
      if (model->placement().last_stage()) {
        const double expected = whole_chain(stages, micro, 0).loss_sum;
        EXPECT_NEAR(train_loss, expected, 1e-12 * expected) << at << ": a training run after forward_only";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, PipelineSchedules,
                         ::testing::Values(PipelineSchedule::GPipe, PipelineSchedule::OneFOneB),
                         [](const ::testing::TestParamInfo<PipelineSchedule>& info) {
                           return info.param == PipelineSchedule::GPipe ? std::string("GPipe")
                                                                        : std::string("OneFOneB");
                         });

TEST(PipelineSchedule, ParsesTheTwoNames) {
  EXPECT_EQ(parse_schedule("gpipe", "test"), PipelineSchedule::GPipe);
  EXPECT_EQ(parse_schedule("1f1b", "test"), PipelineSchedule::OneFOneB);
  EXPECT_THROW(parse_schedule("1F1B", "test"), Error);
}

}  // namespace
}  // namespace strata
