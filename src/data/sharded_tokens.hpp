#pragma once
// Sharded token dataset (docs/dataset-format.md, "Sharded datasets"): a directory with manifest.json and HDF5 shard
// files, each a valid single-file token dataset. A split is the concatenation of its shards, read as windows.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/h5.hpp"
#include "data/manifest.hpp"
#include "data/token_writer.hpp"
#include "data/window_source.hpp"

namespace strata::data {

// Splits train and val each into `shards` contiguous pieces of nearly equal size (each >= 2 tokens, else an error)
// and writes them as separate files `train-NNNNN.h5` / `val-NNNNN.h5` (the other split of each file is empty),
// then writes manifest.json atomically, last (and tokenizer.json first when meta carries a BPE tokenizer).
// Creates `dir` if needed; an existing manifest is replaced only after every shard was written.
// Collective over `comm`: each rank passes its contiguous part of each split (rank order = token order); the
// shards come out the same for any number of ranks; shard k is written by rank k % size.
void write_sharded_tokens(const std::string& dir, const TokenDatasetMeta& meta, const std::vector<uint32_t>& train,
                          const std::vector<uint32_t>& val, int shards, MPI_Comm comm = MPI_COMM_SELF);

// One split of a sharded dataset as windows; window i covers global tokens [i*T, i*T+T] and may cross shards.
// Opening checks every shard against the manifest (file present, same vocab_size/eot_id, token count) and, with
// verify_checksums, reads every shard and checks its xxh64. Keeps every shard open. Not thread-safe.
class ShardedTokenWindows : public WindowSource {
 public:
  // on_verified(tokens): called after each shard's checksum is verified (progress of `strata dataset verify`).
  ShardedTokenWindows(const std::string& dir, const std::string& split, int seq_len, int64_t model_vocab_size,
                      bool verify_checksums = true, const std::function<void(int64_t)>& on_verified = {});

  int64_t num_windows() const override { return num_windows_; }
  int seq_len() const override { return seq_len_; }
  void read_window(int64_t window, int32_t* x, int32_t* y) const override;
  void read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const override;
  std::string describe() const override { return dir_ + ": " + split_; }
  void check_all_token_ids() const override;  // free when the checksums were verified (done in that pass)

  const DatasetManifest& manifest() const { return manifest_; }
  int64_t num_tokens() const { return num_tokens_; }
  int num_shards() const { return static_cast<int>(shards_.size()); }

 private:
  struct Shard {
    std::string path;
    int64_t start = 0, tokens = 0;  // global offset of its first token in the split
    std::string stored_type;        // h5::element_type_name of the dataset
    uint64_t bytes = 0;             // the file's size when opened (data/shard_reads.hpp)
    h5::Handle file, dataset;       // dataset closes before the file (members destroyed in reverse order)
  };
  std::string dir_, split_;
  int seq_len_;
  int64_t model_vocab_size_;
  DatasetManifest manifest_;
  std::vector<Shard> shards_;
  int64_t num_tokens_ = 0, num_windows_ = 0;
  bool ids_checked_ = false;
  void check_id(const Shard& s, int64_t id, int64_t index) const;
};

}  // namespace strata::data
