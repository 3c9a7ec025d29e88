#pragma once
// Classification metrics (what `strata eval` prints and writes as JSON, and what validation logs to
// metrics.jsonl): accuracy, top-k accuracy, precision, recall and F1 per class with macro, micro and weighted
// averages, the confusion matrix and the mean loss. Computed from counts that add up over ranks and batches, so
// any data-parallel or pipeline layout gives the same numbers. Conventions as scikit-learn's with labels =
// 0..classes-1 and zero_division = 0: a class never predicted has precision 0, one never present recall 0.
// Ties between logits rank the lower class first, as argmax does (so top-1 = accuracy); scikit-learn's
// top_k_accuracy_score breaks exact ties the other way.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"

namespace strata {

// Counts over evaluated rows (a row: one image, one sequence, or one sequence step).
class ClassificationCounts {
 public:
  explicit ClassificationCounts(int classes, int max_k = 5);

  // Adds `rows` rows of logits [rows, classes] (host memory) and their targets [rows].
  void add(const float* logits, const int32_t* targets, int64_t rows);
  // Sums the counts over a group (every rank of it calls); ranks without rows contribute zeros.
  void all_reduce(Communicator& group);

  int classes() const { return classes_; }
  int64_t rows() const { return rows_; }
  const std::vector<int64_t>& confusion() const { return confusion_; }  // [true class, predicted class]
  const std::vector<int>& ks() const { return ks_; }                    // 1, 3, 5 (those <= classes)
  const std::vector<int64_t>& top_k_hits() const { return top_k_hits_; }
  double loss_sum() const { return loss_sum_; }

 private:
  int classes_;
  std::vector<int> ks_;
  std::vector<int64_t> confusion_, top_k_hits_;
  int64_t rows_ = 0;
  double loss_sum_ = 0;  // sum over rows of the softmax cross-entropy, in double
};

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct ClassificationMetrics {
  int classes = 0;
  int64_t rows = 0;
  double loss = 0, accuracy = 0;
  std::vector<std::pair<int, double>> top_k;  // (k, accuracy)
  std::vector<ClassScores> per_class;
  ClassScores macro, micro, weighted;  // support: all rows
  std::vector<int64_t> confusion;      // [true, predicted], row-major
};

ClassificationMetrics classification_metrics(const ClassificationCounts& counts);

// {"rows", "loss", "accuracy", "top_k": {"1": .., "3": ..}, "macro": {...}, "micro": {...}, "weighted": {...},
//  "per_class": [{"class", "precision", "recall", "f1", "support"}], "confusion": [[..], ..]}
nlohmann::json to_json(const ClassificationMetrics& m);

// A table as scikit-learn's classification_report prints it, with accuracy, top-k and loss lines.
std::string format_report(const ClassificationMetrics& m);

}  // namespace strata
