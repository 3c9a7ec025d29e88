#pragma once
// Structured pruning (`strata prune`, docs/training.md): removes whole structures, those whose incoming weights have
// the smallest L1 norm (Li et al. 2017), and returns a genuinely smaller model with its weights, which `strata eval`
// and train.init_from load like any other: conv channels of every block (cnn; within each GroupNorm group, the same
// number per group, so the groups keep their channels), the units of every recurrent layer (lstm, gru: each unit's
// rows of every gate), and the units of the hidden layer before the head (cnn, lstm). A removed structure's outgoing
// weights (the next layer's input columns) go with it, so a structure whose weights were all zero leaves the outputs
// exactly as they were. GPT: the attention heads of every block (a head's q, k and v rows and its columns of the
// output projection; the smaller model keeps the head width, model.d_head) and the MLP units (model.d_mlp).
#include <map>
#include <string>
#include <vector>

#include "core/config.hpp"

namespace strata {

// The fraction of each kind of structure to remove, in [0, 1) (0: keep all); at least one of each stays.
struct StructureFractions {
  double channels = 0;  // cnn: conv channels of every block
  double units = 0;     // lstm: units of every recurrent layer
  double hidden = 0;    // cnn, lstm: units of the hidden layer (model.hidden)
  double heads = 0;     // gpt: attention heads of every block
  double mlp = 0;       // gpt: MLP units of every block
};

// Tensors by name, each at the global shape model_tensors() gives it (row-major).
using HostTensors = std::map<std::string, std::vector<float>>;

struct SmallerModel {
  ModelConfig model;
  HostTensors tensors;
  std::vector<std::string> removed;  // one line per pruned layer ("blocks.0: 16 -> 8 channels")
};

// Throws naming the option when a fraction does not apply to the model's kind or is outside [0, 1).
SmallerModel prune_structures(const ModelConfig& model, const HostTensors& tensors, const StructureFractions& f);

}  // namespace strata
