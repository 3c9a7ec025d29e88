#include "ckpt/checkpoint.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <map>

#include <fmt/ranges.h>

#include "ckpt/checkpoint_dir.hpp"
#include "ckpt/tensor_slab.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/model_attrs.hpp"
#include "core/rng.hpp"
#include "core/stopwatch.hpp"
#include "core/two_phase_write.hpp"
#include "strata_version.hpp"

namespace strata::ckpt {
namespace {
using Lock = std::lock_guard<std::recursive_mutex>;

// The tensor groups of a checkpoint, in file order: every tensor has the first three, a pruned one also its mask.
constexpr const char* kGroups[] = {"params", "adam_m", "adam_v", "prune_mask"};
constexpr int kMaskGroup = 3, kGroupCount = 4;

std::string hex(uint64_t v) { return fmt::format("{:016x}", v); }

// Name lists stored as one string attribute, a name per line.
std::string join_lines(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : "\n") + n;
  return joined;
}
std::vector<std::string> split_lines(const std::string& joined) {
  std::vector<std::string> names;
  for (size_t pos = 0; pos < joined.size();) {
    const size_t end = std::min(joined.find('\n', pos), joined.size());
    names.push_back(joined.substr(pos, end - pos));
    pos = end + 1;
  }
  return names;
}

// Calls fn(local index, global flat index, length) for each run of local elements [begin, end) of `spec` that is
// contiguous in the global tensor (a shard map keeps runs of `run` local elements together).
template <class Fn>
void for_each_global_run(const TensorSpec& spec, int64_t begin, int64_t end, Fn&& fn) {
  const ShardMap& m = spec.shard;
  const int64_t run = m.replicated()     ? spec.numel()
                      : m.split_dim == 0 ? (m.rows / m.blocks) * m.cols
                                         : m.cols / m.blocks;
  for (int64_t j = begin; j < end;) {
    const int64_t stop = std::min(end, (j / run + 1) * run);
    fn(j, m.global_index(j), stop - j);
    j = stop;
  }
}

// Sum of the element hashes of local elements [begin, end) of `spec` (values[0] is element begin).
uint64_t hash_range(const float* values, const TensorSpec& spec, int64_t begin, int64_t end) {
  uint64_t sum = 0;
  for_each_global_run(spec, begin, end, [&](int64_t j, int64_t global, int64_t n) {
    sum += hash_contiguous(values + (j - begin), n, global);
  });
  return sum;
}

// The memory this rank moves for (group, local tensor), and the local element range.
struct Piece {
  float* data = nullptr;
  int64_t begin = 0, end = 0;
};
Piece piece_of(const RankTensors& t, int group, size_t i, bool for_write) {
  const TensorSpec& s = t.specs[i];
  if (for_write && !t.writes[i]) return {};
  int64_t lo = s.offset, hi = s.offset + s.numel();  // buffer range
  if (group == 1 || group == 2) lo = std::max(lo, t.adam_begin), hi = std::min(hi, t.adam_end);
  if (for_write) lo = std::max(lo, t.write_begin), hi = std::min(hi, t.write_end);
  if (lo >= hi) return {};
  float* data = group == 0            ? t.params + lo
                : group == kMaskGroup ? t.mask + lo
                                      : (group == 1 ? t.adam_m : t.adam_v) + (lo - t.adam_begin);
  return {data, lo - s.offset, hi - s.offset};
}

std::string dataset_name(int group, const std::string& tensor) { return std::string(kGroups[group]) + "/" + tensor; }

// The groups tensor `name` has in a file listing `masked`.
int groups_of(const std::string& name, const std::vector<std::string>& masked) {
  return std::find(masked.begin(), masked.end(), name) != masked.end() ? kGroupCount : 3;
}

// Every dataset of a checkpoint as (tensor index, group), in file order.
std::vector<std::pair<size_t, int>> datasets_of(const CheckpointMeta& meta) {
  std::vector<std::pair<size_t, int>> out;
  for (size_t t = 0; t < meta.tensors.size(); ++t)
    for (int g = 0; g < groups_of(meta.tensors[t].name, meta.masked); ++g) out.emplace_back(t, g);
  return out;
}

}  // namespace

uint64_t hash_contiguous(const float* values, int64_t n, int64_t first) {
  uint64_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < n; ++k) {
    uint32_t bits;
    std::memcpy(&bits, values + k, sizeof bits);
    sum += element_hash(first + k, bits);
  }
  return sum;
}

void writer_flags(RankTensors& t, int dp_rank, int dp_size, int tp_rank, bool zero1) {
  t.writes.assign(t.specs.size(), 0);
  int64_t elements = 0;
  for (size_t i = 0; i < t.specs.size(); ++i) {
    t.writes[i] = !t.specs[i].tied_copy && (!t.specs[i].shard.replicated() || tp_rank == 0);
    elements = std::max(elements, t.specs[i].offset + t.specs[i].numel());
  }
  if (zero1) {
    t.write_begin = t.adam_begin;
    t.write_end = t.adam_end;
  } else {
    const int64_t share = (elements + dp_size - 1) / dp_size;
    t.write_begin = std::min(elements, share * dp_rank);
    t.write_end = std::min(elements, share * (dp_rank + 1));
  }
}
std::string model_mismatch(const ModelConfig& stored, const ModelConfig& run) {
  if (stored.kind != run.kind)
    return fmt::format("model.kind = {} in the checkpoint, {} in the config", stored.kind, run.kind);
  const auto a = model_fields(stored), b = model_fields(run);
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].second != b[i].second)
      return fmt::format("model.{} = {} in the checkpoint, {} in the config", a[i].first, format_value(a[i].second),
                         format_value(b[i].second));
  return "";
}

namespace {
// What this rank writes of one dataset of the file.
struct Written {
  size_t tensor = 0;  // index in global_tensors
  int group = 0;
  size_t spec = 0;  // index in RankTensors::specs
  Piece piece;
};

std::vector<Written> written_by(const RankTensors& mine, const std::vector<TensorSpec>& all,
                                const std::vector<std::string>& masked) {
  std::map<std::string, size_t> local;  // name -> index in mine.specs
  for (size_t i = 0; i < mine.specs.size(); ++i) local[mine.specs[i].name] = i;
  std::vector<Written> out;
  for (size_t t = 0; t < all.size(); ++t) {
    auto it = local.find(all[t].name);
    if (it == local.end()) continue;
    for (int g = 0; g < groups_of(all[t].name, masked); ++g) {
      STRATA_CHECK(g != kMaskGroup || mine.mask, "checkpoint: a mask for tensor '{}' but no mask buffer", all[t].name);
      const Piece p = piece_of(mine, g, it->second, /*for_write=*/true);
      if (p.end > p.begin) out.push_back({t, g, it->second, p});
    }
  }
  return out;
}

void write_root_attributes(hid_t file, const CheckpointMeta& meta) {
  h5::write_attr(file, "format", std::string(kCheckpointFormat));
  h5::write_attr(file, "format_version", kCheckpointVersion);
  h5::write_attr(file, "step", meta.step);
  h5::write_attr(file, "consumed_samples", meta.consumed_samples);
  h5::write_attr(file, "adam_steps", meta.adam_steps);
  h5::write_attr(file, "train_seed", meta.train_seed);
  h5::write_attr(file, "data_seed", meta.data_seed);
  h5::write_attr(file, "data_shuffle", int64_t(meta.shuffle));
  h5::write_attr(file, "lr_schedule", meta.lr_schedule);
  h5::write_attr(file, "lr", meta.lr);
  h5::write_attr(file, "config", meta.config_toml);
  if (meta.early_stop_has_best) {
    h5::write_attr(file, "early_stop.best", meta.early_stop_best);
    h5::write_attr(file, "early_stop.best_step", meta.early_stop_best_step);
  }
  h5::write_attr(file, "early_stop.bad_evals", meta.early_stop_bad_evals);
  if (!meta.guard_state.empty()) h5::write_attr(file, "guard", meta.guard_state);
  write_model_attrs(file, meta.model, "model.");
  h5::write_attr(file, "layout.dp", int64_t(meta.dp));
  h5::write_attr(file, "layout.tp", int64_t(meta.tp));
  h5::write_attr(file, "layout.pp", int64_t(meta.pp));
  h5::write_attr(file, "layout.zero1", int64_t(meta.zero1));
  h5::write_attr(file, "library_version", std::string(STRATA_VERSION));
  std::vector<std::string> names;
  for (const auto& t : meta.tensors) names.push_back(t.name);
  h5::write_attr(file, "tensors", join_lines(names));
  if (!meta.masked.empty()) h5::write_attr(file, "prune_masks", join_lines(meta.masked));
  h5::write_attr(
      file, "checksum_algorithm",
      std::string("sum over elements mod 2^64 of mix64(float32 bits ^ global flat index * 0x9E3779B97F4A7C15)"));
}
}  // namespace

SaveStats write_checkpoint(const std::string& path, const RankTensors& mine, const CheckpointMeta& meta, MPI_Comm world,
                           const SaveOptions& options) {
  const auto start = Clock::now();
  int rank = 0, ranks = 1;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  STRATA_MPI(MPI_Comm_size(world, &ranks));
  const bool through_hdf5 = options.io == "hdf5";
  STRATA_CHECK(through_hdf5 || options.io == "direct" || options.io == "buffered",
               "checkpoint.io = '{}': expected direct, buffered or hdf5", options.io);
  SaveStats stats;
  const auto& all = meta.tensors;
  STRATA_CHECK(!all.empty(), "checkpoint '{}': no tensors to write", path);
  for (const TensorSpec& t : all) stats.bytes += groups_of(t.name, meta.masked) * int64_t(t.global_numel()) * 4;
  const std::vector<Written> pieces = written_by(mine, all, meta.masked);

  // Checksums in a thread of their own, while the file is created and written (they are attributes, written last).
  std::future<std::vector<uint64_t>> hashing = std::async(std::launch::async, [&] {
    const auto h0 = Clock::now();
    std::vector<uint64_t> sums(all.size() * kGroupCount, 0);
    for (const Written& w : pieces)
      sums[w.tensor * kGroupCount + size_t(w.group)] =
          hash_range(w.piece.data, mine.specs[w.spec], w.piece.begin, w.piece.end);
    stats.hash_seconds = seconds_since(h0);
    return sums;
  });
  struct JoinHashing {  // never leave the thread running past an exception
    std::future<std::vector<uint64_t>>& f;
    ~JoinHashing() {
      if (f.valid()) f.wait();
    }
  } join_hashing{hashing};

  h5::Handle file;
  std::vector<FileSegment> segments;  // two-phase writes: where this rank's bytes go in the file
  bool collective = true;             // io = hdf5: every H5Dwrite of this rank went collective, else why not
  std::string no_collective_cause;
  {
    Lock lock(hdf5_mutex());
    h5::Handle fapl(STRATA_H5(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose);
    STRATA_H5(H5Pset_fapl_mpio(fapl, world, MPI_INFO_NULL));
    STRATA_H5(H5Pset_all_coll_metadata_ops(fapl, true));
    STRATA_H5(H5Pset_coll_metadata_write(fapl, true));
    // Tensors of 64 KiB and more start on a page boundary (their direct writes need no partial first page); the
    // metadata aggregates into 1 MiB blocks instead of 2 KiB ones wedged between datasets.
    STRATA_H5(H5Pset_alignment(fapl, 64 * 1024, kDirectAlignment));
    STRATA_H5(H5Pset_meta_block_size(fapl, 1 << 20));
    hid_t fid = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    STRATA_CHECK(fid >= 0, "cannot create checkpoint '{}' (collective create over every rank)", path);
    file = h5::Handle(fid, H5Fclose);
    h5::Handle dxpl(STRATA_H5(H5Pcreate(H5P_DATASET_XFER)), H5Pclose);
    STRATA_H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    for (int g = 0; g < (meta.masked.empty() ? 3 : kGroupCount); ++g)
      h5::Handle group(STRATA_H5(H5Gcreate2(file, kGroups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)), H5Gclose);
    // Contiguous, allocated at creation (so the raw data has a file offset before anything is written), no fill
    // values (every element is written).
    h5::Handle dcpl(STRATA_H5(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
    STRATA_H5(H5Pset_layout(dcpl, H5D_CONTIGUOUS));
    STRATA_H5(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY));
    STRATA_H5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
    size_t next = 0;  // the next entry of `pieces`, in file order
    for (size_t t = 0; t < all.size(); ++t) {
      const TensorSpec& global = all[t];
      std::vector<hsize_t> dims(global.global_shape.begin(), global.global_shape.end());
      for (int g = 0; g < groups_of(global.name, meta.masked); ++g) {
        h5::Handle space(STRATA_H5(H5Screate_simple(int(dims.size()), dims.data(), nullptr)), H5Sclose);
        h5::Handle ds(STRATA_H5(H5Dcreate2(file, dataset_name(g, global.name).c_str(), H5T_NATIVE_FLOAT, space,
                                           H5P_DEFAULT, dcpl, H5P_DEFAULT)),
                      H5Dclose);
        const Written* w =
            next < pieces.size() && pieces[next].tensor == t && pieces[next].group == g ? &pieces[next++] : nullptr;
        if (!through_hdf5) {
          if (!w) continue;
          const haddr_t offset = H5Dget_offset(ds);
          STRATA_CHECK(offset != HADDR_UNDEF, "'{}': tensor '{}' has no file offset after creation", path,
                       dataset_name(g, global.name));
          const Piece& p = w->piece;
          for_each_global_run(mine.specs[w->spec], p.begin, p.end, [&](int64_t j, int64_t global_index, int64_t n) {
            segments.push_back(
                {uint64_t(offset) + uint64_t(global_index) * 4, p.data + (j - p.begin), uint64_t(n) * 4});
          });
          continue;
        }
        // Collective H5Dwrite: ranks without a part take part with empty selections.
        const int64_t n = w ? w->piece.end - w->piece.begin : 0;
        hsize_t count = hsize_t(std::max<int64_t>(n, 1));
        h5::Handle mem(STRATA_H5(H5Screate_simple(1, &count, nullptr)), H5Sclose);
        if (w) {
          select_local_range(space, mine.specs[w->spec], w->piece.begin, w->piece.end);
        } else {
          STRATA_H5(H5Sselect_none(space));
          STRATA_H5(H5Sselect_none(mem));
        }
        const auto w0 = Clock::now();
        STRATA_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, dxpl, w ? w->piece.data : nullptr));
        stats.write_seconds += seconds_since(w0);
        H5D_mpio_actual_io_mode_t mode;
        STRATA_H5(H5Pget_mpio_actual_io_mode(dxpl, &mode));
        if (mode == H5D_MPIO_NO_COLLECTIVE && collective) {
          uint32_t local_cause = 0, global_cause = 0;
          STRATA_H5(H5Pget_mpio_no_collective_cause(dxpl, &local_cause, &global_cause));
          collective = false;
          no_collective_cause = fmt::format("{}: H5Pget_mpio_no_collective_cause local 0x{:x} global 0x{:x}",
                                            dataset_name(g, global.name), local_cause, global_cause);
        }
        if (t == all.size() / 2 && g == 0) crash_point("write", meta.step, rank);
      }
    }
    write_root_attributes(file, meta);
    if (!through_hdf5) STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));  // the structure is on disk before the data
  }
  if (through_hdf5) {
    int all_collective = collective ? 1 : 0;
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, &all_collective, 1, MPI_INT, MPI_MIN, world));
    if (!all_collective && collective) no_collective_cause = "another rank's writes went independent";
    stats.io = all_collective ? "HDF5 collective writes" : "HDF5 independent writes (" + no_collective_cause + ")";
    stats.structure_seconds = seconds_since(start) - stats.write_seconds;
  } else {
    // The tensors' bytes, outside HDF5 (which stays open but idle: other threads may use HDF5 meanwhile).
    stats.structure_seconds = seconds_since(start);
    TwoPhaseOptions two_phase;
    two_phase.chunk_bytes = uint64_t(options.chunk_mib) << 20;
    two_phase.direct = options.io == "direct";
    two_phase.after_round = [&](int64_t round, int64_t rounds) {
      if (round == rounds / 2) crash_point("write", meta.step, rank);
    };
    const auto w0 = Clock::now();
    const TwoPhaseStats written = two_phase_write(path, std::move(segments), world, two_phase);
    stats.sync_seconds = written.sync_seconds;
    stats.write_seconds = seconds_since(w0) - written.sync_seconds;
    int direct_everywhere = written.direct ? 1 : 0;
    STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, &direct_everywhere, 1, MPI_INT, MPI_MIN, world));
    const std::string refused =
        written.direct_unavailable.empty() ? "O_DIRECT refused on another rank" : written.direct_unavailable;
    stats.io = fmt::format("two-phase, {} writer{}, {} MiB chunks, {}", ranks, ranks > 1 ? "s" : "", options.chunk_mib,
                           direct_everywhere  ? std::string("O_DIRECT")
                           : two_phase.direct ? "page cache (" + refused + ")"
                                              : std::string("page cache"));
  }
  // Each element was hashed by the one rank that wrote it: the sums are the tensors' checksums.
  const auto c0 = Clock::now();
  std::vector<uint64_t> sums = hashing.get();
  STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, sums.data(), int(sums.size()), MPI_UINT64_T, MPI_SUM, world));
  {
    Lock lock(hdf5_mutex());
    for (const auto& [t, g] : datasets_of(meta)) {
      h5::Handle ds(STRATA_H5(H5Dopen2(file, dataset_name(g, all[t].name).c_str(), H5P_DEFAULT)), H5Dclose);
      h5::write_attr(ds, "checksum", hex(sums[t * kGroupCount + size_t(g)]));
    }
    STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));  // MPI_File_sync on every rank
    file = h5::Handle();                          // collective close
  }
  (through_hdf5 ? stats.sync_seconds : stats.structure_seconds) += seconds_since(c0);
  stats.seconds = seconds_since(start);
  return stats;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  auto file = h5::open_file(path);
  const std::string format = h5::has_attr(file, "format") ? h5::read_attr_string(file, "format", path) : "";
  STRATA_CHECK(format == kCheckpointFormat, "{}: attribute 'format' is '{}', expected '{}' (not a Strata checkpoint)",
               path, format, kCheckpointFormat);
  const int64_t version = h5::read_attr_int(file, "format_version", path);
  STRATA_CHECK(version >= 1 && version <= kCheckpointVersion,
               "{}: format_version {}, this build reads versions 1 to {}", path, version, kCheckpointVersion);
  CheckpointMeta m;
  m.step = h5::read_attr_int(file, "step", path);
  m.consumed_samples = h5::read_attr_int(file, "consumed_samples", path);
  m.adam_steps = h5::read_attr_int(file, "adam_steps", path);
  m.train_seed = h5::read_attr_int(file, "train_seed", path);
  m.data_seed = h5::read_attr_int(file, "data_seed", path);
  m.shuffle = h5::read_attr_int(file, "data_shuffle", path) != 0;
  m.lr_schedule = h5::read_attr_string(file, "lr_schedule", path);
  m.lr = h5::read_attr_double(file, "lr", path);
  m.config_toml = h5::read_attr_string(file, "config", path);
  m.early_stop_has_best = h5::has_attr(file, "early_stop.best");
  if (m.early_stop_has_best) {
    m.early_stop_best = h5::read_attr_double(file, "early_stop.best", path);
    m.early_stop_best_step = h5::read_attr_int(file, "early_stop.best_step", path);
  }
  if (h5::has_attr(file, "early_stop.bad_evals"))
    m.early_stop_bad_evals = h5::read_attr_int(file, "early_stop.bad_evals", path);
  if (h5::has_attr(file, "guard")) m.guard_state = h5::read_attr_string(file, "guard", path);
  m.model = read_model_attrs(file, "model.", path);
  m.dp = int(h5::read_attr_int(file, "layout.dp", path));
  m.tp = int(h5::read_attr_int(file, "layout.tp", path));
  m.pp = int(h5::read_attr_int(file, "layout.pp", path));
  m.zero1 = h5::read_attr_int(file, "layout.zero1", path) != 0;
  m.library_version = h5::read_attr_string(file, "library_version", path);
  // The tensor list: attribute `tensors` (version 2), else the members of `params` (version 1, in name order).
  std::vector<std::string> names;
  if (h5::has_attr(file, "tensors")) {
    names = split_lines(h5::read_attr_string(file, "tensors", path));
  } else {
    names = h5::member_names(file, "params", path);
  }
  STRATA_CHECK(!names.empty(), "{}: the checkpoint lists no tensors", path);
  if (h5::has_attr(file, "prune_masks")) m.masked = split_lines(h5::read_attr_string(file, "prune_masks", path));
  for (const auto& name : names) {
    TensorSpec t;
    t.name = name;
    const auto dims = h5::dataset_shape(file, dataset_name(0, name), path);
    t.global_shape = t.shape = std::vector<int64_t>(dims.begin(), dims.end());
    m.tensors.push_back(std::move(t));
  }
  return m;
}

std::string verify_checkpoint(const std::string& path, MPI_Comm world) {
  int rank = 0, size = 1;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  STRATA_MPI(MPI_Comm_size(world, &size));
  // Every rank opens the file and checks the metadata; dataset d is read whole and hashed by rank d % size.
  std::string problem;
  int64_t datasets = 0;
  try {
    const CheckpointMeta meta = read_checkpoint_meta(path);
    const auto all = datasets_of(meta);
    datasets = int64_t(all.size());
    auto file = h5::open_file(path);
    std::vector<float> values;
    for (int64_t d = 0; d < datasets && problem.empty(); ++d) {
      const TensorSpec& t = meta.tensors[all[size_t(d)].first];
      const std::string name = dataset_name(all[size_t(d)].second, t.name);
      STRATA_CHECK(h5::exists(file, name), "{}: tensor '{}' is missing", path, name);
      if (d % size != rank) continue;
      values = h5::read_dataset<float>(file, name, path);
      STRATA_CHECK(int64_t(values.size()) == t.global_numel(), "{}: tensor '{}' holds {} elements, expected {}", path,
                   name, values.size(), t.global_numel());
      const uint64_t sum = hash_contiguous(values.data(), int64_t(values.size()), 0);
      h5::Handle ds(STRATA_H5(H5Dopen2(file, name.c_str(), H5P_DEFAULT)), H5Dclose);
      const std::string stored = h5::read_attr_string(ds, "checksum", path + ": " + name);
      if (stored != hex(sum))
        problem =
            fmt::format("{}: checksum mismatch in tensor '{}': computed {}, stored {}", path, name, hex(sum), stored);
    }
  } catch (const Error& e) {
    problem = e.what();
  }
  // The lowest failing rank's message goes to everyone.
  int failing = problem.empty() ? size : rank, first = size;
  STRATA_MPI(MPI_Allreduce(&failing, &first, 1, MPI_INT, MPI_MIN, world));
  if (first == size) return "";
  int length = int(problem.size());
  STRATA_MPI(MPI_Bcast(&length, 1, MPI_INT, first, world));
  problem.resize(size_t(length));
  STRATA_MPI(MPI_Bcast(problem.data(), length, MPI_CHAR, first, world));
  return problem;
}

void load_checkpoint(const std::string& path, RankTensors& mine) {
  const std::vector<std::string> masked = mine.mask ? read_checkpoint_meta(path).masked : std::vector<std::string>{};
  auto file = h5::open_file(path);
  Lock lock(hdf5_mutex());
  for (size_t i = 0; i < mine.specs.size(); ++i) {
    const TensorSpec& s = mine.specs[i];
    for (int g = 0; g < groups_of(s.name, masked); ++g) {
      const std::string name = dataset_name(g, s.name);
      STRATA_CHECK(h5::exists(file, name), "{}: tensor '{}' is missing", path, name);
      const auto dims = h5::dataset_shape(file, name, path);
      STRATA_CHECK(std::vector<int64_t>(dims.begin(), dims.end()) == s.global_shape,
                   "{}: tensor '{}' has shape [{}], expected [{}]", path, name, fmt::join(dims, ", "),
                   fmt::join(s.global_shape, ", "));
      const Piece p = piece_of(mine, g, i, /*for_write=*/false);
      if (p.end == p.begin) continue;
      h5::Handle ds(STRATA_H5(H5Dopen2(file, name.c_str(), H5P_DEFAULT)), H5Dclose);
      h5::Handle space(STRATA_H5(H5Dget_space(ds)), H5Sclose);
      select_local_range(space, s, p.begin, p.end);
      const hsize_t count = hsize_t(p.end - p.begin);
      h5::Handle mem(STRATA_H5(H5Screate_simple(1, &count, nullptr)), H5Sclose);
      STRATA_H5(H5Dread(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, p.data));
    }
  }
}

}  // namespace strata::ckpt
