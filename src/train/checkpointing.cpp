#include "train/checkpointing.hpp"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "ckpt/checkpoint_dir.hpp"
#include "core/error.hpp"
#include "core/stopwatch.hpp"

namespace strata {
namespace {

// Rank 0's list of strings, on every rank (the ranks may not all see the directory the same way at the same time).
std::vector<std::string> broadcast_list(std::vector<std::string> list, MPI_Comm comm) {
  std::string joined;
  for (const auto& s : list) joined += s + '\n';
  int n = int(joined.size());
  STRATA_MPI(MPI_Bcast(&n, 1, MPI_INT, 0, comm));
  joined.resize(size_t(n));
  STRATA_MPI(MPI_Bcast(joined.data(), n, MPI_CHAR, 0, comm));
  list.clear();
  for (size_t pos = 0; pos < joined.size();) {
    const size_t end = joined.find('\n', pos);
    list.push_back(joined.substr(pos, end - pos));
    pos = end + 1;
  }
  return list;
}
}  // namespace

Checkpointer::Checkpointer(const Config& config, ProcessGrid& grid, ParamBuffer<float>& params, AdamW<float>& adam,
                           std::vector<TensorSpec> tensors)
    : config_(config),
      grid_(grid),
      params_(params),
      adam_(adam),
      tensors_(std::move(tensors)),
      lead_(grid.world().rank() == 0) {
  const auto& c = config.checkpoint;
  dir_ = std::filesystem::path(c.dir).is_absolute() ? c.dir
                                                    : (std::filesystem::path(config.train.out_dir) / c.dir).string();
  if (c.async) {
    int provided = 0;
    STRATA_MPI(MPI_Query_thread(&provided));
    STRATA_CHECK(provided == MPI_THREAD_MULTIPLE,
                 "{}: checkpoint.async = true needs MPI_THREAD_MULTIPLE, this MPI provides level {}", config.source,
                 provided);
  }
  STRATA_MPI(MPI_Comm_dup(grid.world_comm(), &writer_comm_));
  if (c.async && c.every > 0) {
    // Touch the host buffers now: first-touch page faults on 3 x the parameter count would otherwise land in the
    // first save's copy, which holds up the step loop.
    snapshot_params_.assign(params.params().extent(0), 0.0f);
    snapshot_m_.assign(adam.m().extent(0), 0.0f);
    snapshot_v_.assign(adam.v().extent(0), 0.0f);
  }
}

Checkpointer::~Checkpointer() {
  if (writer_.joinable()) writer_.join();
  if (writer_comm_ != MPI_COMM_NULL) MPI_Comm_free(&writer_comm_);
}

void Checkpointer::set_pruning(Vec<float> mask, std::vector<std::string> masked) {
  mask_ = std::move(mask);
  masked_ = std::move(masked);
}

ckpt::RankTensors Checkpointer::rank_tensors(float* params, float* m, float* v, float* mask) const {
  ckpt::RankTensors t;
  t.specs = params_.specs();
  t.params = params;
  t.mask = mask;
  t.adam_m = m;
  t.adam_v = v;
  t.adam_begin = adam_.begin();
  t.adam_end = adam_.end();
  ckpt::writer_flags(t, grid_.coord().dp, grid_.layout().dp(), grid_.coord().tp, config_.parallel.zero1);
  return t;
}

Checkpointer::Resumed Checkpointer::resume() {
  const auto& c = config_.checkpoint;
  if (c.resume == "none") return {};
  std::vector<std::string> candidates;
  const bool automatic = c.resume == "auto";
  if (lead_) {
    if (automatic) {
      const std::string latest = ckpt::latest_checkpoint(dir_);
      if (!latest.empty()) candidates.push_back(latest);
      for (const auto& p : ckpt::list_checkpoints(dir_))
        if (p != latest) candidates.push_back(p);
    } else {
      candidates.push_back(c.resume);
    }
  }
  const Resumed r = load_first_valid(broadcast_list(candidates, grid_.world_comm()), automatic, "resumed from");
  if (lead_ && r.path.empty()) fmt::print("checkpoint: no valid checkpoint in {}: starting fresh\n", dir_);
  return r;
}

Checkpointer::Resumed Checkpointer::roll_back(int64_t at_most_step) {
  wait();  // a save in flight completes (it may be the newest checkpoint allowed)
  std::vector<std::string> candidates;
  if (lead_)
    for (const auto& p : ckpt::list_checkpoints(dir_))
      if (ckpt::checkpoint_step(p) <= at_most_step) candidates.push_back(p);
  const Resumed r =
      load_first_valid(broadcast_list(candidates, grid_.world_comm()), /*automatic=*/true, "rolled back to");
  STRATA_CHECK(!r.path.empty(),
               "guard: no checkpoint at or before step {} in {} to roll back to (checkpoint.every = {}: save more "
               "often, or set guard.rollback_after = 0 to only skip)",
               at_most_step, dir_, config_.checkpoint.every);
  // The newer checkpoints belong to the abandoned trajectory: set aside (not deleted), so that a resume cannot pick
  // them; the rolled-back state is saved again at its step (save_now with again = true) to become `latest`.
  if (lead_) ckpt::set_aside_after(dir_, r.step);
  STRATA_MPI(MPI_Barrier(grid_.world_comm()));
  last_saved_step_ = -1;
  return r;
}

Checkpointer::Resumed Checkpointer::load_first_valid(const std::vector<std::string>& candidates, bool automatic,
                                                     const char* verb) {
  const auto& c = config_.checkpoint;
  const MPI_Comm world = grid_.world_comm();
  Resumed r;
  for (const auto& path : candidates) {
    if (path.empty()) continue;
    std::string problem;
    const auto verify_start = Clock::now();
    if (!std::filesystem::exists(path))
      problem = fmt::format("'{}': checkpoint not found", path);
    else if (c.verify)
      problem = ckpt::verify_checkpoint(path, world);
    const double verify_ms = ms_since(verify_start);
    if (!problem.empty()) {
      STRATA_CHECK(automatic, "checkpoint.resume: {}", problem);
      if (lead_) fmt::print("checkpoint: {}; falling back to the previous checkpoint\n", problem);
      continue;
    }
    const auto meta = ckpt::read_checkpoint_meta(path);
    const std::string mismatch = ckpt::model_mismatch(meta.model, config_.model);
    STRATA_CHECK(mismatch.empty(), "{}: cannot resume {}: {}", config_.source, path, mismatch);
    STRATA_CHECK(meta.step <= config_.train.steps, "{}: {} is at step {}, past train.steps = {}", config_.source, path,
                 meta.step, config_.train.steps);
    const auto load_start = Clock::now();
    auto host_params = Kokkos::create_mirror_view(params_.params());
    auto host_m = Kokkos::create_mirror_view(adam_.m());
    auto host_v = Kokkos::create_mirror_view(adam_.v());
    Kokkos::deep_copy(host_m, 0.0f);
    Kokkos::deep_copy(host_v, 0.0f);
    auto host_mask = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask_);
    auto mine = rank_tensors(host_params.data(), host_m.data(), host_v.data(),
                             mask_.extent(0) > 0 ? host_mask.data() : nullptr);
    ckpt::load_checkpoint(path, mine);
    Kokkos::deep_copy(mask_, host_mask);
    Kokkos::deep_copy(params_.params(), host_params);
    Kokkos::deep_copy(adam_.m(), host_m);
    Kokkos::deep_copy(adam_.v(), host_v);
    adam_.set_steps_taken(long(meta.adam_steps));
    STRATA_MPI(MPI_Barrier(world));
    const double load_ms = ms_since(load_start);
    const double bytes = double(std::filesystem::file_size(path));
    if (lead_)
      fmt::print("checkpoint: verified {:.1f} MiB in {:.2f} s ({:.2f} GB/s), loaded in {:.2f} s\n", bytes / (1 << 20),
                 verify_ms / 1e3, bytes / (verify_ms / 1e3) / 1e9, load_ms / 1e3);
    if (lead_)
      fmt::print("checkpoint: {} {} (step {}, {} samples consumed, written by layout dp {} x tp {} x pp {}{})\n", verb,
                 path, meta.step, meta.consumed_samples, meta.dp, meta.tp, meta.pp, meta.zero1 ? " with ZeRO-1" : "");
    r.step = meta.step;
    r.consumed_samples = meta.consumed_samples;
    r.path = path;
    r.early_stop = {meta.early_stop_has_best, meta.early_stop_best, meta.early_stop_best_step,
                    meta.early_stop_bad_evals};
    r.guard_state = meta.guard_state;
    return r;
  }
  return r;
}

void Checkpointer::maybe_save(int64_t step, int64_t consumed_samples, double lr, bool final) {
  const int64_t every = config_.checkpoint.every;
  if (every <= 0 || (step % every != 0 && !final)) return;
  save(step, consumed_samples, lr);
}

void Checkpointer::save_now(int64_t step, int64_t consumed_samples, double lr, bool again) {
  if (again || step != last_saved_step_) save(step, consumed_samples, lr);
}

void Checkpointer::wait() {
  if (writer_.joinable()) writer_.join();
  if (writer_error_) {
    auto e = writer_error_;
    writer_error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void Checkpointer::save(int64_t step, int64_t consumed_samples, double lr) {
  const auto start = Clock::now();
  wait();  // one save in flight at most
  const MPI_Comm world = grid_.world_comm();
  if (lead_) {
    std::filesystem::create_directories(dir_);
    ckpt::remove_temporaries(dir_);
  }
  STRATA_MPI(MPI_Barrier(world));  // the directory exists for everyone
  ckpt::CheckpointMeta meta;
  meta.step = step;
  meta.consumed_samples = consumed_samples;
  meta.adam_steps = adam_.steps_taken();
  meta.train_seed = config_.train.seed;
  meta.data_seed = config_.data.seed;
  meta.shuffle = config_.data.shuffle;
  meta.lr_schedule = config_.train.lr_schedule;
  meta.lr = lr;
  meta.config_toml = to_toml(config_);
  meta.early_stop_has_best = early_stop_.has_best;
  meta.early_stop_best = early_stop_.best;
  meta.early_stop_best_step = early_stop_.best_step;
  meta.early_stop_bad_evals = early_stop_.bad_evals;
  if (guard_) meta.guard_state = guard_->state_json();
  meta.model = config_.model;
  meta.tensors = tensors_;
  meta.masked = masked_;
  meta.dp = grid_.layout().dp();
  meta.tp = grid_.layout().tp();
  meta.pp = grid_.layout().pp();
  meta.zero1 = config_.parallel.zero1;
  const std::string tmp = (std::filesystem::path(dir_) / ckpt::checkpoint_name(step)).string() + ".tmp";
  const int rank = grid_.world().rank();
  const auto& c = config_.checkpoint;
  auto write_and_commit = [this, tmp, meta, rank, &c](ckpt::RankTensors mine, MPI_Comm comm) {
    ckpt::SaveOptions options;
    options.io = c.io;
    ckpt::SaveStats stats;
    try {
      stats = ckpt::write_checkpoint(tmp, mine, meta, comm, options);
    } catch (const Error& e) {
      // A full disk, a quota, an I/O error: the partial file goes (freeing its space); `latest` and the earlier
      // checkpoints were never touched. Every rank throws (the collective write agrees on failure).
      std::error_code ec;
      if (rank == 0) std::filesystem::remove(tmp, ec);
      const std::string latest = ckpt::latest_checkpoint(dir_);
      STRATA_FAIL(
          "checkpoint: saving step {} failed and was abandoned ({} removed); the newest complete checkpoint "
          "is still {}: {}",
          meta.step, std::filesystem::path(tmp).filename().string(), latest.empty() ? std::string("none") : latest,
          e.what());
    }
    STRATA_MPI(MPI_Barrier(comm));  // every rank's data is synced before the rename makes it visible
    ckpt::crash_point("before_commit", meta.step, rank);
    if (rank == 0) {
      ckpt::commit_checkpoint(dir_, meta.step, c.keep_last, c.keep_every);
      fmt::print(
          "checkpoint: saved step {} to {} ({:.1f} MiB in {:.2f} s, {:.2f} GB/s: checksums {:.2f} s, structure "
          "{:.2f} s, writes {:.2f} s, sync {:.2f} s; {})\n",
          meta.step, dir_, double(stats.bytes) / (1 << 20), stats.seconds, double(stats.bytes) / stats.seconds / 1e9,
          stats.hash_seconds, stats.structure_seconds, stats.write_seconds, stats.sync_seconds, stats.io);
    }
    STRATA_MPI(MPI_Barrier(comm));
  };
  Kokkos::fence();
  if (!c.async) {
    auto host_params = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params_.params());
    auto host_m = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), adam_.m());
    auto host_v = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), adam_.v());
    auto host_mask = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mask_);
    write_and_commit(rank_tensors(host_params.data(), host_m.data(), host_v.data(),
                                  mask_.extent(0) > 0 ? host_mask.data() : nullptr),
                     world);
  } else {
    // Copy the state to host buffers owned by the writer; training may change the originals from now on.
    auto copy = [](const Vec<float>& from, std::vector<float>& to) {
      to.resize(from.extent(0));
      Kokkos::deep_copy(HostVec<float>(to.data(), to.size()), from);
    };
    const auto copy_start = Clock::now();
    copy(params_.params(), snapshot_params_);
    copy(adam_.m(), snapshot_m_);
    copy(adam_.v(), snapshot_v_);
    copy(mask_, snapshot_mask_);
    if (lead_)
      fmt::print("checkpoint: step {} copied to host buffers in {:.1f} ms, writing in the background\n", step,
                 ms_since(copy_start));
    auto mine = rank_tensors(snapshot_params_.data(), snapshot_m_.data(), snapshot_v_.data(),
                             mask_.extent(0) > 0 ? snapshot_mask_.data() : nullptr);
    writer_ = std::thread([this, write_and_commit, mine] {
      try {
        write_and_commit(mine, writer_comm_);
      } catch (...) {
        writer_error_ = std::current_exception();
      }
    });
  }
  ++saves_;
  last_saved_step_ = step;
  blocked_ms_total_ += ms_since(start);
}

}  // namespace strata
