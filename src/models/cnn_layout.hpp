#pragma once
// The CNN image classifier's tensors and shapes (model.kind = "cnn"): conv blocks (conv -> GroupNorm ->
// activation -> pooling), then flatten, an optional hidden layer and the classifier head. Names follow a PyTorch
// module tree (blocks.0.conv.weight, ..., hidden.weight, head.weight) so a twin loads them by name.
#include <string>
#include <vector>

#include "core/config.hpp"
#include "nn/model.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// One conv block's sizes per sample.
struct CnnBlockGeometry {
  int in_c = 0, in_h = 0, in_w = 0;       // input
  int out_c = 0, conv_h = 0, conv_w = 0;  // after the convolution (and the norm and activation)
  int out_h = 0, out_w = 0;               // after pooling (= conv_h, conv_w without pooling)
  int padding = 0;
  int64_t input_size() const { return int64_t(in_c) * in_h * in_w; }
  int64_t conv_size() const { return int64_t(out_c) * conv_h * conv_w; }
  int64_t output_size() const { return int64_t(out_c) * out_h * out_w; }
};

// Every block's geometry from model.input_shape [C, H, W]; throws naming the fields when an image becomes too small.
std::vector<CnnBlockGeometry> cnn_geometry(const ModelConfig& model);

struct CnnLayout {
  std::vector<TensorSpec> specs;
  struct Block {
    CnnBlockGeometry g;  // global sizes
    // Tensor parallelism: a column-parallel block (even index) holds out_c / tp output channels of the whole input;
    // a row-parallel one (odd) reads in_c / tp channels and its outputs are summed over the group.
    bool column = true;
    int in_local = 0, out_local = 0;                         // this rank's input and output channels
    int conv_w = -1, conv_b = -1, norm_w = -1, norm_b = -1;  // indices into specs (norm: -1 without GroupNorm)
  };
  std::vector<Block> blocks;  // this stage's blocks: first_block .. first_block + blocks.size() - 1
  int first_block = 0;
  int hidden_w = -1, hidden_b = -1, head_w = -1, head_b = -1;  // last stage (hidden: -1 without one)
  int64_t flat = 0;                // features into the head (or the hidden layer): the last block's output per sample
  int64_t input_size = 0;          // values per image (C * H * W of the model's input)
  bool head_row_parallel = false;  // the last block is column-parallel: the first head layer reads split features
  int classes = 0;
  Placement placement;
};

// Conv blocks per pipeline stage, balanced by forward FLOPs (the last stage also runs the head).
std::vector<int> cnn_stage_layer_counts(const ModelConfig& model, int stages);

// The tensors of tensor-parallel rank placement.tp_rank on pipeline stage placement.stage.
CnnLayout cnn_layout(const ModelConfig& model, const Placement& placement = {});

// Throws, naming `source` and the fields, unless the blocks split over tp ranks: the output channels of blocks 0,
// 2, 4, ... (column-parallel) and norm_groups are multiples of tp.
void check_cnn_tensor_parallel(const ModelConfig& model, int tp, const std::string& source);

// Parameters, and forward + backward FLOPs per image (3x the forward's multiply-adds x 2).
int64_t cnn_parameters(const ModelConfig& model);
double cnn_flops_per_sample(const ModelConfig& model);

}  // namespace strata
