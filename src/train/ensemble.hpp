#pragma once
// Ensembles (`strata ensemble`, docs/training.md): several trained models (different seeds, folds, or snapshots of one
// run) evaluated on the same validation rows and combined. Classifiers: `mean` averages the members' softmax
// probabilities (the ensemble predicts their argmax, its loss is the cross-entropy of the average); `vote` predicts
// the class most members predict (ties, and the order behind the top-k, by the averaged probability; the loss
// reported is still the averaged probabilities'). Language models: the mixture's cross-entropy per token,
// -log(mean over members of p(target)).
#include <cstdint>
#include <string>
#include <vector>

namespace strata {

enum class EnsembleCombine { Mean, Vote };
EnsembleCombine ensemble_combine_named(const std::string& name);  // "mean" | "vote"; throws otherwise

// Scores [rows, classes] whose softmax cross-entropy, argmax and top-k are the ensemble's, from each member's logits
// [rows, classes] (host memory). Mean: log of the averaged probabilities. Vote: votes + the averaged probability
// (< 1, so it only orders classes with equal votes); its softmax is not a probability (use the mean's loss).
std::vector<float> combine_logits(const std::vector<std::vector<float>>& member_logits, int64_t rows, int classes,
                                  EnsembleCombine how);

// The mixture's mean cross-entropy from each member's log p(target) per row: -mean_r log(mean_m exp(logp[m][r])).
double mixture_loss(const std::vector<std::vector<double>>& member_target_logp);

}  // namespace strata
