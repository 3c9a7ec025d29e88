#include "train/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace strata {

ClassificationCounts::ClassificationCounts(int classes, int max_k)
    : classes_(classes), confusion_(size_t(classes) * size_t(classes), 0) {
  STRATA_CHECK(classes >= 2, "classification metrics: {} classes (expected >= 2)", classes);
  for (int k : {1, 3, 5})
    if (k <= max_k && k <= classes) ks_.push_back(k);
  top_k_hits_.assign(ks_.size(), 0);
}

void ClassificationCounts::add(const float* logits, const int32_t* targets, int64_t rows) {
  const int C = classes_;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * C;
    const int32_t t = targets[r];
    STRATA_CHECK(t >= 0 && t < C, "classification metrics: target {} outside 0..{}", t, C - 1);
    // The prediction is the first largest logit; a target ranks k-th when k-1 logits beat it (ties: lower index
    // first, as argmax does).
    int pred = 0, rank = 0;
    double mx = row[0];
    for (int c = 1; c < C; ++c)
      if (row[c] > row[pred]) pred = c;
    for (int c = 0; c < C; ++c) {
      if (row[c] > row[t] || (row[c] == row[t] && c < t)) ++rank;
      mx = std::max(mx, double(row[c]));
    }
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(double(row[c]) - mx);
    loss_sum_ += mx + std::log(sum) - double(row[t]);
    ++confusion_[size_t(t) * size_t(C) + size_t(pred)];
    for (size_t i = 0; i < ks_.size(); ++i)
      if (rank < ks_[i]) ++top_k_hits_[i];
  }
  rows_ += rows;
}

void ClassificationCounts::all_reduce(Communicator& group) {
  // Counts travel as doubles: exact below 2^53.
  std::vector<double> all;
  for (auto v : confusion_) all.push_back(double(v));
  for (auto v : top_k_hits_) all.push_back(double(v));
  all.push_back(double(rows_));
  all.push_back(loss_sum_);
  group.all_reduce_sum(all.data(), all.size());
  size_t i = 0;
  for (auto& v : confusion_) v = int64_t(all[i++]);
  for (auto& v : top_k_hits_) v = int64_t(all[i++]);
  rows_ = int64_t(all[i++]);
  loss_sum_ = all[i];
}

namespace {
double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }
double f1(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }
}  // namespace

ClassificationMetrics classification_metrics(const ClassificationCounts& counts) {
  ClassificationMetrics m;
  const int C = counts.classes();
  m.classes = C;
  m.rows = counts.rows();
  m.confusion = counts.confusion();
  m.loss = ratio(counts.loss_sum(), double(m.rows));
  int64_t correct = 0;
  for (int c = 0; c < C; ++c) correct += m.confusion[size_t(c) * C + c];
  m.accuracy = ratio(double(correct), double(m.rows));
  for (size_t i = 0; i < counts.ks().size(); ++i)
    m.top_k.push_back({counts.ks()[i], ratio(double(counts.top_k_hits()[i]), double(m.rows))});
  for (int c = 0; c < C; ++c) {
    int64_t predicted = 0, present = 0;
    for (int o = 0; o < C; ++o) {
      predicted += m.confusion[size_t(o) * C + c];
      present += m.confusion[size_t(c) * C + o];
    }
    const double tp = double(m.confusion[size_t(c) * C + c]);
    ClassScores s;
    s.precision = ratio(tp, double(predicted));
    s.recall = ratio(tp, double(present));
    s.f1 = f1(s.precision, s.recall);
    s.support = present;
    m.per_class.push_back(s);
    m.macro.precision += s.precision / C;
    m.macro.recall += s.recall / C;
    m.macro.f1 += s.f1 / C;
    const double w = ratio(double(present), double(m.rows));
    m.weighted.precision += w * s.precision;
    m.weighted.recall += w * s.recall;
    m.weighted.f1 += w * s.f1;
  }
  // One label per row: micro-averaged precision, recall and F1 all equal the accuracy.
  m.micro.precision = m.micro.recall = m.micro.f1 = m.accuracy;
  m.macro.support = m.micro.support = m.weighted.support = m.rows;
  return m;
}

nlohmann::json to_json(const ClassificationMetrics& m) {
  auto scores = [](const ClassScores& s) {
    return nlohmann::json{{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
  };
  nlohmann::json j = {{"rows", m.rows},
                      {"classes", m.classes},
                      {"loss", m.loss},
                      {"accuracy", m.accuracy},
                      {"macro", scores(m.macro)},
                      {"micro", scores(m.micro)},
                      {"weighted", scores(m.weighted)}};
  j["top_k"] = nlohmann::json::object();
  for (const auto& [k, acc] : m.top_k) j["top_k"][std::to_string(k)] = acc;
  j["per_class"] = nlohmann::json::array();
  for (int c = 0; c < m.classes; ++c) {
    auto s = scores(m.per_class[size_t(c)]);
    s["class"] = c;
    j["per_class"].push_back(s);
  }
  j["confusion"] = nlohmann::json::array();
  for (int t = 0; t < m.classes; ++t)
    j["confusion"].push_back(std::vector<int64_t>(m.confusion.begin() + int64_t(t) * m.classes,
                                                  m.confusion.begin() + int64_t(t + 1) * m.classes));
  return j;
}

std::string format_report(const ClassificationMetrics& m) {
  std::string out = fmt::format("{:>12} {:>9} {:>9} {:>9} {:>9}\n", "class", "precision", "recall", "f1", "support");
  auto line = [&](const std::string& name, const ClassScores& s) {
    out += fmt::format("{:>12} {:9.4f} {:9.4f} {:9.4f} {:9}\n", name, s.precision, s.recall, s.f1, s.support);
  };
  for (int c = 0; c < m.classes; ++c) line(std::to_string(c), m.per_class[size_t(c)]);
  out += "\n";
  line("macro avg", m.macro);
  line("micro avg", m.micro);
  line("weighted avg", m.weighted);
  out += fmt::format("\naccuracy {:.4f} over {} rows", m.accuracy, m.rows);
  for (const auto& [k, acc] : m.top_k)
    if (k > 1) out += fmt::format(" | top-{} {:.4f}", k, acc);
  out += fmt::format(" | loss {:.4f}\n", m.loss);
  return out;
}

}  // namespace strata
