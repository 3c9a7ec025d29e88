#pragma once
// The recurrent sequence classifier's tensors (model.kind = "lstm"): stacked LSTM or GRU layers (model.cell) over
// x [T, F], then an optional hidden layer and the classifier head, reading the last step's state (labels =
// sequence) or every step's (labels = step). Names follow PyTorch: a torch.nn.LSTM/GRU named `lstm`
// (lstm.weight_ih_l0, ...), then hidden.*, head.*.
#include <vector>

#include "core/config.hpp"
#include "nn/model.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

struct LstmLayout {
  std::vector<TensorSpec> specs;
  struct Layer {
    int input = 0;  // input features of this layer (F for the first, hidden_size after)
    int w_ih = -1, w_hh = -1, b_ih = -1, b_hh = -1;
  };
  std::vector<Layer> layers;  // this stage's layers: first_layer .. first_layer + layers.size() - 1
  int first_layer = 0;
  int hidden_w = -1, hidden_b = -1, head_w = -1, head_b = -1;  // last stage
  int steps = 0, features = 0, hidden = 0, gates = 4;          // T, F, H; 4 (lstm) or 3 (gru) gate blocks
  int classes = 0;
  bool per_step = false;  // labels = step: one prediction per step
  Placement placement;
};

// Recurrent layers per pipeline stage, balanced by FLOPs (the last stage also runs the head).
std::vector<int> lstm_stage_layer_counts(const ModelConfig& model, int stages);

// The tensors of pipeline stage placement.stage (tp must be 1). Needs a resolved model: input_shape [T, F],
// num_classes and labels (sequence | step) from the dataset.
LstmLayout lstm_layout(const ModelConfig& model, const Placement& placement = {});

int64_t lstm_parameters(const ModelConfig& model);
double lstm_flops_per_sample(const ModelConfig& model);  // forward + backward

}  // namespace strata
