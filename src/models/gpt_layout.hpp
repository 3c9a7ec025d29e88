#pragma once
// The GPT's parameter tensors: names, global shapes, initialisation (GPT-2 style).
// Names follow GPT-2's checkpoint naming so that the weights read naturally in h5py/PyTorch.
#include <string>
#include <vector>

#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata {

// Indices into ParamBuffer::specs() of one block's tensors.
struct BlockParams {
  int ln1_w, ln1_b, qkv_w, qkv_b, attn_proj_w, attn_proj_b, ln2_w, ln2_b, fc_w, fc_b, mlp_proj_w, mlp_proj_b;
};

struct GptLayout {
  std::vector<TensorSpec> specs;
  // -1 where this pipeline stage does not hold the tensor: wte on the first and the last stage (the tied
  // head: two copies kept equal by summing their gradients, TensorSpec::tied), wpe on the first, ln_f on the last.
  int wte = -1, wpe = -1, lnf_w = -1, lnf_b = -1;
  std::vector<BlockParams> blocks;  // this stage's blocks: layers first_layer .. first_layer + blocks.size() - 1
  int first_layer = 0;
  int stage = 0, stages = 1;
  bool first_stage() const { return stage == 0; }
  bool last_stage() const { return stage == stages - 1; }
};

// Pipeline stage boundaries, balanced by forward FLOPs per token: a block costs 24 C^2 + 4 T C (its four GEMMs
// and the full T x T attention), and the last stage also runs the LM head, 2 C V (GPT-2 124M at T 1024: 4.5
// blocks' worth). The last stage gets the number of layers that minimises the largest stage cost (among equals,
// the gap between largest and smallest); the others split the rest evenly, the earlier ones one layer longer. Every
// stage holds at least one layer. A pure function of the model and `stages`, so every rank and every tool computes the
// same split.
std::vector<int> gpt_stage_layer_counts(const ModelConfig& model, int stages);
// The first layer and the number of layers of pipeline stage `stage` of `stages`.
std::pair<int, int> stage_layers(const ModelConfig& model, int stage, int stages);

// The tensors held by tensor-parallel rank `tp_rank` of `tp_size` on pipeline stage `stage` of `stages`
// (Megatron's split: attention heads and the MLP's hidden units column-parallel in c_attn/c_fc and
// row-parallel in the c_proj that follow, the vocabulary split in wte). Throws unless tp_size divides n_head
// and vocab_size and stages <= n_layer.
GptLayout gpt_layout(const ModelConfig& model, int tp_rank = 0, int tp_size = 1, int stage = 0, int stages = 1);

// Checks that the model splits over tp ranks; the message names the fields and the numbers.
void check_tensor_parallel_split(const ModelConfig& model, int tp_size, const std::string& source);

// Parameters excluding the token and position embeddings (the N of the 6N FLOPs per token).
int64_t non_embedding_params(const ModelConfig& model);
// The attention's width, n_head * d_head (d_model unless model.d_head is set), and the MLP's hidden units (model.d_mlp,
// or 4 d_model).
int64_t gpt_attention_width(const ModelConfig& model);
int64_t gpt_mlp_width(const ModelConfig& model);

}  // namespace strata
