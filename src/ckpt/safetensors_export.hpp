#pragma once
// `strata export`: a checkpoint's model weights (its params/ group; no optimizer state) in a format other tools
// read. Every tensor is checked against its stored checksum as it is read; a mismatch stops the export with an
// error naming the file and the tensor, and nothing is left under the output name (written to OUT.tmp, fsynced,
// renamed).
//
// safetensors (https://github.com/huggingface/safetensors): 8 bytes little-endian header length N; N bytes of JSON
//   {"__metadata__": {"format": "pt", "source": "strata-checkpoint", "library_version", "step", "n_layer",
//    "n_head", "d_model", "vocab_size", "seq_len": strings},
//    "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}
//   padded with spaces so that the data starts 8-byte aligned; then the tensors' float32 little-endian bytes,
//   contiguous, in the order of their names (sorted), offsets relative to the first byte after the header. The names
//   are those of docs/weights-format.md ("wte", "h.0.attn.c_attn.weight", ...), which are also the parameter names
//   of perf/torch_gpt.GPT: `model.load_state_dict(safetensors.torch.load_file(OUT))` loads it.
// hdf5: a weights file (docs/weights-format.md, "strata-weights" version 1) that `strata eval --weights` and
//   perf/torch_gpt.load_strata_weights read.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace strata::ckpt {

// The formats `strata export --format` accepts.
const std::vector<std::string>& export_formats();  // {"safetensors", "hdf5"}

struct ExportResult {
  int64_t tensors = 0;
  int64_t bytes = 0;  // tensor bytes written
  int64_t step = 0;   // the checkpoint's step
  double seconds = 0;
};

// Told (tensors done, tensors in all) after each tensor.
using ExportProgress = std::function<void(int64_t done, int64_t total)>;

// Writes the model weights of `checkpoint` to `out` in `format` (one of export_formats()). One process.
ExportResult export_checkpoint(const std::string& checkpoint, const std::string& out, const std::string& format,
                               const ExportProgress& progress = {});

ExportResult export_safetensors(const std::string& checkpoint, const std::string& out,
                                const ExportProgress& progress = {});
ExportResult export_weights_hdf5(const std::string& checkpoint, const std::string& out,
                                 const ExportProgress& progress = {});

}  // namespace strata::ckpt
