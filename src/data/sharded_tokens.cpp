#include "data/sharded_tokens.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "data/rank_work.hpp"
#include "data/shard_reads.hpp"
#include "data/token_dataset.hpp"

namespace strata::data {
namespace fs = std::filesystem;

namespace {
// Sends every rank's part of one split to the owners of the shards it overlaps (shard k: rank k % P) and returns
// the pieces of this rank's shards, ordered by k. Parts are contiguous in rank order; shard k covers global tokens
// [n*k/shards, n*(k+1)/shards).
std::map<int, std::vector<uint32_t>> exchange_shards(const std::vector<uint32_t>& mine, int shards, MPI_Comm comm) {
  int P = 1, me = 0;
  STRATA_MPI(MPI_Comm_size(comm, &P));
  STRATA_MPI(MPI_Comm_rank(comm, &me));
  const auto sizes = all_gather_int64(comm, int64_t(mine.size()));
  std::vector<int64_t> offset(size_t(P) + 1, 0);
  for (int q = 0; q < P; ++q) offset[size_t(q) + 1] = offset[size_t(q)] + sizes[size_t(q)];
  const int64_t n = offset[size_t(P)];
  auto overlap = [&](int q, int k) {  // [begin, end) of rank q's part inside shard k, in global positions
    const auto [b, e] = block_range(n, shards, k);
    return std::pair<int64_t, int64_t>{std::max(b, offset[size_t(q)]), std::min(e, offset[size_t(q) + 1])};
  };
  std::vector<int> send_counts(size_t(P), 0), send_displs(size_t(P), 0), recv_counts(size_t(P), 0),
      recv_displs(size_t(P), 0);
  std::vector<uint32_t> send;
  for (int d = 0; d < P; ++d) {  // to rank d: my overlap with each of its shards, by k
    send_displs[size_t(d)] = int(send.size());
    for (int k = d; k < shards; k += P) {
      const auto [b, e] = overlap(me, k);
      if (e > b)
        send.insert(send.end(), mine.begin() + (b - offset[size_t(me)]), mine.begin() + (e - offset[size_t(me)]));
    }
    send_counts[size_t(d)] = int(int64_t(send.size()) - send_displs[size_t(d)]);
  }
  int64_t total = 0;
  for (int q = 0; q < P; ++q) {  // from rank q: its overlap with each of my shards, by k
    recv_displs[size_t(q)] = int(total);
    for (int k = me; k < shards; k += P) {
      const auto [b, e] = overlap(q, k);
      total += std::max<int64_t>(0, e - b);
    }
    recv_counts[size_t(q)] = int(total - recv_displs[size_t(q)]);
  }
  STRATA_CHECK(int64_t(send.size()) < INT32_MAX && total < INT32_MAX,
               "sharded write: {} tokens per rank exceed MPI's int counts; use more shards or ranks",
               std::max<int64_t>(int64_t(send.size()), total));
  std::vector<uint32_t> recv(static_cast<size_t>(total));
  STRATA_MPI(MPI_Alltoallv(send.data(), send_counts.data(), send_displs.data(), MPI_UINT32_T, recv.data(),
                           recv_counts.data(), recv_displs.data(), MPI_UINT32_T, comm));
  std::map<int, std::vector<uint32_t>> pieces;
  for (int k = me; k < shards; k += P) pieces[k];
  for (int q = 0; q < P; ++q) {
    int64_t pos = recv_displs[size_t(q)];
    for (int k = me; k < shards; k += P) {
      const auto [b, e] = overlap(q, k);
      if (e <= b) continue;
      pieces[k].insert(pieces[k].end(), recv.begin() + pos, recv.begin() + pos + (e - b));
      pos += e - b;
    }
  }
  return pieces;
}
}  // namespace

void write_sharded_tokens(const std::string& dir, const TokenDatasetMeta& meta, const std::vector<uint32_t>& train,
                          const std::vector<uint32_t>& val, int shards, MPI_Comm comm) {
  int P = 1, me = 0;
  STRATA_MPI(MPI_Comm_size(comm, &P));
  STRATA_MPI(MPI_Comm_rank(comm, &me));
  STRATA_CHECK(shards >= 1, "{}: shard count must be >= 1, got {}", dir, shards);
  // Same totals on every rank, so every rank takes the same branch of each check below.
  for (const auto* split : {"train", "val"}) {
    int64_t n = 0;
    for (auto c : all_gather_int64(comm, int64_t((std::string(split) == "train" ? train : val).size()))) n += c;
    STRATA_CHECK(n >= 2 * int64_t{shards}, "{}: {} has {} tokens, too few for {} shards of at least 2 tokens", dir,
                 split, n, shards);
  }
  DatasetManifest m;
  m.dtype = meta.vocab_size <= 65536 ? "uint16" : "uint32";
  m.vocab_size = meta.vocab_size;
  m.eot_id = meta.eot_id;
  m.tokenizer = meta.tokenizer;
  run_on_all_ranks(comm, "sharded write", [&] {
    if (me != 0) return;
    std::error_code ec;
    fs::create_directories(dir, ec);
    STRATA_CHECK(!ec, "'{}': cannot create dataset directory: {}", dir, ec.message());
  });
  const std::vector<uint32_t> empty;
  for (const auto* split : {"train", "val"}) {
    auto pieces = exchange_shards(std::string(split) == "train" ? train : val, shards, comm);
    // Entry k's count and checksum, filled by its owner and summed over ranks (the others contribute zeros).
    std::vector<uint64_t> counts(size_t(shards), 0), sums(size_t(shards), 0);
    run_on_all_ranks(comm, "sharded write", [&] {
      for (auto& [k, piece] : pieces) {
        const std::string path = (fs::path(dir) / fmt::format("{}-{:05d}.h5", split, k)).string();
        if (std::string(split) == "train")
          write_token_dataset(path, meta, piece, empty);
        else
          write_token_dataset(path, meta, empty, piece);
        counts[size_t(k)] = piece.size();
        sums[size_t(k)] = token_checksum(piece);
      }
    });
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, counts.data(), shards, MPI_UINT64_T, MPI_SUM, comm));
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, sums.data(), shards, MPI_UINT64_T, MPI_SUM, comm));
    for (int k = 0; k < shards; ++k)
      m.splits[split].push_back({fmt::format("{}-{:05d}.h5", split, k), int64_t(counts[size_t(k)]), sums[size_t(k)]});
  }
  // Every shard is on disk (the reductions above completed after every owner wrote): the manifest goes last.
  run_on_all_ranks(comm, "sharded write", [&] {
    if (me != 0) return;
    if (!meta.tokenizer_json.empty()) {
      m.tokenizer_file = "tokenizer.json";
      const std::string path = (fs::path(dir) / m.tokenizer_file).string();
      write_file_atomically(path, meta.tokenizer_json);
      m.tokenizer_xxh64 = file_checksum(path);
    }
    write_manifest(dir, m);
  });
}

ShardedTokenWindows::ShardedTokenWindows(const std::string& dir, const std::string& split, int seq_len,
                                         int64_t model_vocab_size, bool verify_checksums,
                                         const std::function<void(int64_t)>& on_verified)
    : dir_(dir), split_(split), seq_len_(seq_len), model_vocab_size_(model_vocab_size) {
  STRATA_CHECK(split == "train" || split == "val", "{}: split '{}' is not 'train' or 'val'", dir, split);
  STRATA_CHECK(seq_len > 0, "{}: {}: model.seq_len must be > 0, got {}", dir, split, seq_len);
  STRATA_CHECK(model_vocab_size > 0, "{}: model.vocab_size must be > 0, got {}", dir, model_vocab_size);
  manifest_ = read_manifest(dir);
  const std::string manifest_path = (fs::path(dir) / kManifestName).string();
  STRATA_CHECK(manifest_.vocab_size <= model_vocab_size,
               "{}: field 'vocab_size' is {} but model.vocab_size is {}: the model cannot embed every token id of this "
               "dataset (set model.vocab_size >= {})",
               manifest_path, manifest_.vocab_size, model_vocab_size, manifest_.vocab_size);
  STRATA_CHECK(manifest_.is_tokens(), "{}: field 'kind' is '{}', expected a token dataset ('tokens') here",
               manifest_path, manifest_.kind);
  const auto& entries = manifest_.splits.at(split);
  shards_.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    Shard s;
    s.path = (fs::path(dir) / e.file).string();
    std::error_code ec;
    STRATA_CHECK(fs::is_regular_file(s.path, ec), "{}: shard file '{}' (splits.{}[{}]) not found", manifest_path,
                 s.path, split, i);
    TokenDatasetInfo info = inspect_token_dataset(s.path);
    STRATA_CHECK(info.vocab_size == manifest_.vocab_size && info.eot_id == manifest_.eot_id,
                 "{}: vocab_size {} / eot_id {} differ from the manifest's {} / {} ({})", s.path, info.vocab_size,
                 info.eot_id, manifest_.vocab_size, manifest_.eot_id, manifest_path);
    const int64_t stored = split == "train" ? info.train_tokens : info.val_tokens;
    STRATA_CHECK(stored == e.count,
                 "{}: field 'splits.{}[{}].tokens' is {} but shard '{}' holds {} tokens in {}/tokens", manifest_path,
                 split, i, e.count, s.path, stored, split);
    s.start = num_tokens_;
    s.tokens = stored;
    num_tokens_ += stored;
    s.bytes = shard_bytes(s.path);
    s.file = h5::open_file(s.path);
    s.dataset = h5::Handle(STRATA_H5(H5Dopen2(s.file, (split + "/tokens").c_str(), H5P_DEFAULT)), H5Dclose);
    s.stored_type = h5::element_type_name(s.dataset);
    if (verify_checksums) {
      constexpr hsize_t kChunk = 1 << 20;
      StreamChecksum sum;
      std::vector<int64_t> buf;
      std::vector<uint32_t> ids;
      for (hsize_t off = 0; off < hsize_t(stored); off += kChunk) {
        const hsize_t count = std::min<hsize_t>(kChunk, hsize_t(stored) - off);
        buf.resize(count);
        ids.resize(count);
        read_token_ids(s.dataset, s.stored_type, off, count, buf.data());
        for (hsize_t j = 0; j < count; ++j) {
          check_id(s, buf[j], int64_t(off + j));
          ids[j] = static_cast<uint32_t>(buf[j]);
        }
        sum.update_ids(ids.data(), ids.size());
      }
      const uint64_t got = sum.digest();
      STRATA_CHECK(
          got == e.xxh64,
          "{}: checksum mismatch: shard '{}' {}/tokens has xxh64 {}, manifest field 'splits.{}[{}].xxh64' says "
          "{} (shard corrupted or replaced)",
          manifest_path, s.path, split, checksum_hex(got), split, i, checksum_hex(e.xxh64));
      if (on_verified) on_verified(stored);
    }
    shards_.push_back(std::move(s));
  }
  ids_checked_ = verify_checksums;
  num_windows_ = num_tokens_ > 0 ? (num_tokens_ - 1) / seq_len : 0;
  STRATA_CHECK(num_windows_ > 0, "{}: {}: the split holds {} tokens, fewer than seq_len+1 = {} needed for one window",
               dir, split, num_tokens_, int64_t{seq_len} + 1);
}

void ShardedTokenWindows::check_id(const Shard& s, int64_t id, int64_t index) const {
  if (id < 0 || id >= model_vocab_size_)
    STRATA_FAIL("{}: {}/tokens: token id {} at index {} {}", s.path, split_, id, index,
                id < 0 ? std::string("is negative") : fmt::format(">= model.vocab_size {}", model_vocab_size_));
}

void ShardedTokenWindows::check_all_token_ids() const {
  if (ids_checked_) return;
  constexpr hsize_t kChunk = 1 << 20;
  std::vector<int64_t> buf;
  for (const auto& s : shards_)
    for (hsize_t off = 0; off < hsize_t(s.tokens); off += kChunk) {
      const hsize_t count = std::min<hsize_t>(kChunk, hsize_t(s.tokens) - off);
      buf.resize(count);
      read_token_ids(s.dataset, s.stored_type, off, count, buf.data());
      for (hsize_t j = 0; j < count; ++j) check_id(s, buf[j], int64_t(off + j));
    }
}

void ShardedTokenWindows::read_windows(const std::vector<int64_t>& windows, int32_t* x, int32_t* y) const {
  for (int64_t w : windows)
    STRATA_CHECK(w >= 0 && w < num_windows_, "{}: {}: window {} out of range [0, {})", dir_, split_, w, num_windows_);
  const auto positions = window_positions(windows, seq_len_);  // global, sorted
  std::vector<int64_t> ids(positions.size());
  std::vector<hsize_t> local;
  // One read per shard touched: the positions falling in it, shifted to the shard's own indices.
  for (size_t i = 0, k = 0; i < positions.size(); k = i) {
    auto it = std::upper_bound(shards_.begin(), shards_.end(), int64_t(positions[i]),
                               [](int64_t v, const Shard& s) { return v < s.start; });
    size_t sh = size_t(std::distance(shards_.begin(), it)) - 1;
    while (shards_[sh].tokens == 0 || int64_t(positions[i]) >= shards_[sh].start + shards_[sh].tokens) ++sh;
    const Shard& s = shards_[sh];
    local.clear();
    while (i < positions.size() && int64_t(positions[i]) < s.start + s.tokens)
      local.push_back(positions[i++] - s.start);
    read_shard(s.path, s.bytes, [&] { read_token_positions(s.dataset, s.stored_type, local, ids.data() + k); });
    for (size_t j = 0; j < local.size(); ++j) check_id(s, ids[k + j], int64_t(local[j]));
  }
  scatter_windows(windows, seq_len_, positions, ids.data(), x, y);
}

void ShardedTokenWindows::read_window(int64_t window, int32_t* x, int32_t* y) const { read_windows({window}, x, y); }

}  // namespace strata::data
