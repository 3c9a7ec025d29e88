#pragma once
// Parallel HDF5 checkpoints (docs/checkpoint-format.md, DESIGN.md principle 10). One file per checkpoint, written
// collectively by every rank of the job: each parameter and each AdamW moment at its global shape under a stable
// name, each element written by exactly one rank (its hyperslab), replicated copies written once. Any layout loads
// any checkpoint: a rank reads the global elements of its own tensors and moment range.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "nn/param_buffer.hpp"

namespace strata::ckpt {

inline constexpr const char* kCheckpointFormat = "strata-checkpoint";
// Version 2 stores the tensor list (`tensors`) and the model kind; version 1 files (GPT only) are still read.
inline constexpr int64_t kCheckpointVersion = 2;

// Run state stored as root attributes.
struct CheckpointMeta {
  int64_t step = 0;                       // optimizer steps completed
  int64_t consumed_samples = 0;           // position in the global sample order (data/batch_sampler.hpp)
  int64_t adam_steps = 0;                 // AdamW's step counter (bias correction)
  int64_t train_seed = 0, data_seed = 0;  // the counter-based RNG keys (initialization, sampling, data order)
  bool shuffle = true;
  std::string lr_schedule;  // the schedule is a pure function of step; stored with its value at `step`
  double lr = 0;
  std::string config_toml;  // the resolved config of the run that wrote it
  // Early stopping (train/early_stopping.hpp) as of `step`: the best metric so far, where, and the evaluations since.
  // Absent from checkpoints of runs without it (read as no best yet).
  bool early_stop_has_best = false;
  double early_stop_best = 0;
  int64_t early_stop_best_step = 0, early_stop_bad_evals = 0;
  // The step guard's state as of `step` (train/step_guard.hpp: JSON, attribute `guard`; absent: empty).
  std::string guard_state;
  ModelConfig model;
  // Every tensor of the model at its global shape (name and global_shape), in file order: the file's own list
  // (attribute `tensors`), so tools read any model's checkpoint without knowing the model.
  std::vector<TensorSpec> tensors;
  // Pruning (train/pruning.hpp): the tensors that also store their 0/1 mask (group prune_mask; attribute
  // `prune_masks`, absent when none).
  std::vector<std::string> masked;
  int dp = 1, tp = 1, pp = 1;  // the layout it was written with
  bool zero1 = false;
  std::string library_version;
};

// This rank's tensors and optimizer moments, as host memory.
struct RankTensors {
  std::vector<TensorSpec> specs;  // local shapes, offsets into the buffers
  float* params = nullptr;        // the local parameter buffer
  float* adam_m = nullptr;        // moments of buffer range [adam_begin, adam_end)
  float* adam_v = nullptr;
  int64_t adam_begin = 0, adam_end = 0;
  // Pruning masks laid out like params (null: none). Saving writes the masks of CheckpointMeta::masked; loading reads
  // those the file stores (the others are left as they are).
  float* mask = nullptr;
  // Saving only (see writer_flags): per spec, whether this rank writes its copy of the tensor at all, and the
  // range of buffer elements it writes, in all three groups. Together the ranks write each global element once.
  std::vector<char> writes;
  int64_t write_begin = 0, write_end = 0;
};

// Who writes what: among tensor-parallel ranks holding the same replicated tensor, tp rank 0; a tied tensor's copy
// (TensorSpec::tied_copy) never (the first stage's is written). Data-parallel ranks hold the same
// buffer and split it: each writes its ZeRO-1 shard (parameters and moments), or without ZeRO-1 an even 1/dp of
// the buffer, so every rank writes about as much and mostly whole chunks of the file.
void writer_flags(RankTensors& t, int dp_rank, int dp_size, int tp_rank, bool zero1);

struct SaveOptions {
  // How tensor bytes reach the file: "direct" (two-phase collective writes with O_DIRECT, core/two_phase_write.hpp;
  // the page cache where the file system refuses O_DIRECT), "buffered" (the same through the page cache) or
  // "hdf5" (collective H5Dwrite through MPI-IO). The file is the same either way.
  std::string io = "direct";
  int chunk_mib = 16;  // two-phase chunk per round and rank
};

struct SaveStats {
  int64_t bytes = 0;   // tensor bytes in the file (all ranks)
  double seconds = 0;  // create .. synced, on this rank
  // Within seconds: checksums; the file's structure (HDF5 create, datasets, attributes, close); tensor writes; sync.
  double hash_seconds = 0, structure_seconds = 0, write_seconds = 0, sync_seconds = 0;
  // How the tensors were written, for the save line; with io = hdf5 it says whether every write went collective
  // (H5Pget_mpio_actual_io_mode) on every rank, and if not why (H5Pget_mpio_no_collective_cause).
  std::string io;
};

// Collective over `world`: writes the checkpoint of meta.tensors to `path` (created or truncated), synced to disk. HDF5
// creates the file's structure collectively (datasets allocated contiguously at creation, checksums and run state as
// attributes); the tensors' bytes then go in as options.io says. The caller commits it (ckpt/checkpoint_dir.hpp).
SaveStats write_checkpoint(const std::string& path, const RankTensors& mine, const CheckpointMeta& meta, MPI_Comm world,
                           const SaveOptions& options = {});

// Reads the root attributes (any rank, no collective); throws naming the file and field.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Collective over `world`: reads every tensor of the file once, spread over the ranks, and checks each against its
// stored checksum. Returns "" when the file is complete and intact, else one line saying what is wrong (the same
// on every rank): a truncated or unreadable file, a missing tensor, a checksum mismatch.
std::string verify_checkpoint(const std::string& path, MPI_Comm world);

// Reads this rank's part of every tensor and moment (independent reads). Throws naming the file and tensor.
void load_checkpoint(const std::string& path, RankTensors& mine);

// The first model field in which `stored` differs from `run` ("model.n_layer = 2 in the checkpoint, 4 in the
// config"), or "" when they agree.
std::string model_mismatch(const ModelConfig& stored, const ModelConfig& run);

// The per-tensor checksum: the sum over elements (mod 2^64) of mix64(float bits ^ global index * 0x9E3779B97F4A7C15),
// so ranks add up the hashes of the hyperslabs they wrote, in any order. (The odd multiplier makes index -> key a
// bijection; one mix per element keeps hashing well below the write time.)
inline uint64_t element_hash(int64_t global_index, uint32_t float_bits) {
  uint64_t z = (uint64_t(global_index) * 0x9E3779B97F4A7C15ull) ^ float_bits;
  z += 0x9E3779B97F4A7C15ull;  // rng::mix64, inlined so loops over contiguous indices vectorize
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Sum of element_hash over values[0..n) holding global indices first, first+1, ...
uint64_t hash_contiguous(const float* values, int64_t n, int64_t first);

}  // namespace strata::ckpt
