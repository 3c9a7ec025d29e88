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
  int wte, wpe, lnf_w, lnf_b;
  std::vector<BlockParams> blocks;
};

// The tensors held by tensor-parallel rank `tp_rank` of `tp_size` (Megatron's split: attention heads and the
// MLP's hidden units column-parallel in c_attn/c_fc and row-parallel in the c_proj that follow, the vocabulary
// split in wte). Throws unless tp_size divides n_head and vocab_size.
GptLayout gpt_layout(const ModelConfig& model, int tp_rank = 0, int tp_size = 1);

// Checks that the model splits over tp ranks; the message names the fields and the numbers.
void check_tensor_parallel_split(const ModelConfig& model, int tp_size, const std::string& source);

// Parameters excluding the token and position embeddings (the N of the 6N FLOPs per token).
int64_t non_embedding_params(const ModelConfig& model);

}  // namespace strata
