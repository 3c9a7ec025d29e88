// `strata dataset inspect | verify | bench`: look at a dataset, check all of it, measure how fast it reads.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "cli/preprocess_commands.hpp"
#include "cli/progress_flags.hpp"
#include "core/error.hpp"
#include "data/array_batches.hpp"
#include "data/open_tokens.hpp"
#include "data/prefetcher.hpp"

namespace strata::cli {
namespace {

struct BenchOptions {
  std::string path, split = "train";
  int batch = 64, steps = 200, prefetch = 2, seq_len = 256;
  double compute_ms = 0;
  bool normalize = true;
  data::AugmentOptions augment;
};

int inspect(const std::string& path) {
  if (!data::is_sharded_dataset(path)) {
    const auto info = data::inspect_tokens(path);
    fmt::print("{}: single-file token dataset, vocab {} (eot {}), tokenizer {}, train {} tokens, val {} tokens\n", path,
               info.vocab_size, info.eot_id, info.tokenizer, info.train_tokens, info.val_tokens);
    return 0;
  }
  const auto m = data::read_manifest(path);
  fmt::print("{}: kind {}, dtype {}", path, m.kind, m.dtype);
  if (m.is_tokens())
    fmt::print(", vocab {} (eot {}), tokenizer {}", m.vocab_size, m.eot_id, m.tokenizer);
  else
    fmt::print(", sample shape [{}], label shape [{}], {} classes", fmt::join(m.sample_shape, ", "),
               fmt::join(m.label_shape, ", "), m.num_classes);
  fmt::print("\n");
  if (!m.mean.empty())
    fmt::print("normalization: mean [{:.4g}], std [{:.4g}]\n", fmt::join(m.mean, ", "), fmt::join(m.std, ", "));
  for (const auto& [split, shards] : m.splits) {
    fmt::print("{}: {} {} in {} shard(s)\n", split, m.total(split), m.count_field(), shards.size());
    for (const auto& e : shards) fmt::print("  {:<20} {:>12} xxh64 {}\n", e.file, e.count, data::checksum_hex(e.xxh64));
  }
  return 0;
}

int verify(const std::string& path, bool progress) {
  const bool arrays = data::is_sharded_dataset(path) && !data::read_manifest(path).is_tokens();
  int64_t total = 0, done = 0;
  if (arrays) {
    const auto m = data::read_manifest(path);
    total = m.total("train") + m.total("val");
  } else {
    const auto info = data::inspect_tokens(path);
    total = info.train_tokens + info.val_tokens;
  }
  Progress meter("verify", arrays ? "samples" : "tokens", total, progress);
  auto verified = [&](int64_t n) { meter.update(done += n); };
  for (const char* split : {"train", "val"}) {
    if (arrays) {
      data::ArraySplit s(path, split, /*verify=*/true, verified);
      fmt::print("{}: {} samples: checksums, shapes, labels and values OK\n", s.describe(), s.num_samples());
    } else {
      const auto info = data::inspect_tokens(path);
      auto s = data::open_token_split(path, split, 1, info.vocab_size, verified);
      s->check_all_token_ids();
      fmt::print("{}: {} tokens: checksums and ids OK\n", s->describe(), s->num_windows() + 1);
    }
  }
  meter.finish();
  return 0;
}

// Reads `steps` batches through the prefetcher, as the trainer does, with an optional simulated compute time per
// step; every rank of `world` is one data-parallel rank reading its own samples.
int bench(const BenchOptions& o, MPI_Comm world) {
  int dp = 1, rank = 0;
  STRATA_MPI(MPI_Comm_size(world, &dp));
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  const bool arrays = data::is_sharded_dataset(o.path) && !data::read_manifest(o.path).is_tokens();
  std::unique_ptr<data::ArraySplit> array_split;
  std::unique_ptr<data::WindowSource> windows;
  std::unique_ptr<data::ArrayBatches> array_batches;
  int64_t samples = 0, bytes_per_step = 0, token_bytes = 2;
  if (arrays) {
    array_split = std::make_unique<data::ArraySplit>(o.path, o.split);
    samples = array_split->num_samples();
  } else {
    const auto info = data::inspect_tokens(o.path);
    windows = data::open_token_split(o.path, o.split, o.seq_len, info.vocab_size);
    token_bytes = info.vocab_size <= 65536 ? 2 : 4;  // as Strata's writers store ids
    samples = windows->num_windows();
  }
  data::BatchSampler sampler(samples, o.batch, /*shuffle=*/true, 1234);
  const int local = o.batch / dp;
  STRATA_CHECK(o.batch % dp == 0, "dataset bench: --batch {} does not split over {} ranks", o.batch, dp);
  std::function<void(int64_t, data::ArrayBatch&)> fill;
  data::ArrayBatch prototype;
  if (arrays) {
    const bool normalize = o.normalize && !array_split->manifest().mean.empty();
    array_batches =
        std::make_unique<data::ArrayBatches>(*array_split, sampler, o.batch, dp, rank, normalize, o.augment);
    prototype = array_batches->prototype();
    bytes_per_step = array_batches->bytes_per_step();
    fill = [&](int64_t step, data::ArrayBatch& out) { array_batches->fill(step, out); };
  } else {
    prototype.y.resize(size_t(local) * size_t(o.seq_len));
    std::vector<int32_t> x(size_t(local) * size_t(o.seq_len));
    bytes_per_step = int64_t(local) * (o.seq_len + 1) * token_bytes;
    fill = [&, x](int64_t step, data::ArrayBatch& out) mutable {
      windows->read_windows(sampler.rank_batch(step * o.batch, o.batch, dp, rank), x.data(), out.y.data());
    };
  }
  std::vector<double> waits;
  STRATA_MPI(MPI_Barrier(world));
  const auto start = std::chrono::steady_clock::now();
  {
    data::Prefetcher<data::ArrayBatch> batches(fill, prototype, 0, o.prefetch);
    for (int s = 0; s < o.steps; ++s) {
      batches.next();
      waits.push_back(batches.last_wait_ms());
      if (o.compute_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(o.compute_ms));
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, world));
  std::vector<double> sorted(waits.begin() + std::min<size_t>(waits.size(), size_t(o.prefetch)), waits.end());
  std::sort(sorted.begin(), sorted.end());
  const double median_wait = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  double total_wait = 0;
  for (double w : waits) total_wait += w;
  if (rank == 0) {
    const double sps = double(o.steps) * o.batch / seconds,
                 mbps = double(o.steps) * bytes_per_step * dp / seconds / 1e6;
    fmt::print(
        "{{\"path\": \"{}\", \"ranks\": {}, \"batch\": {}, \"steps\": {}, \"prefetch\": {}, \"compute_ms\": {}, "
        "\"seconds\": {:.4f}, \"samples_per_s\": {:.1f}, \"mb_per_s\": {:.2f}, "
        "\"steady_wait_ms_median\": {:.4f}, \"wait_ms_total\": {:.2f}}}\n",
        o.path, dp, o.batch, o.steps, o.prefetch, o.compute_ms, seconds, sps, mbps, median_wait, total_wait);
  }
  return 0;
}

}  // namespace

void add_dataset_commands(CLI::App& app, MPI_Comm world, Action& action) {
  auto* ds = app.add_subcommand("dataset", "inspect, verify or benchmark a dataset");
  ds->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto* inspect_cmd = ds->add_subcommand("inspect", "print a dataset's manifest: kind, shapes, splits, shards");
  inspect_cmd->add_option("path", *path, "dataset directory or token file")->required();
  inspect_cmd->callback(
      [&action, path, world] { action = [path, world] { return rank_of(world) == 0 ? inspect(*path) : 0; }; });
  auto* verify_cmd = ds->add_subcommand("verify", "read everything: checksums, shapes, dtypes, ids, labels, NaN");
  verify_cmd->add_option("path", *path, "dataset directory or token file")->required();
  const auto verify_progress = add_progress_flags(verify_cmd);
  verify_cmd->callback([&action, path, world, verify_progress] {
    action = [path, world, verify_progress] { return rank_of(world) == 0 ? verify(*path, verify_progress->on()) : 0; };
  });
  auto o = std::make_shared<BenchOptions>();
  auto* bench_cmd = ds->add_subcommand("bench",
                                       "read batches as training does; print samples/s, MB/s and the wait "
                                       "(one JSON line); every rank reads its data-parallel share");
  bench_cmd->add_option("path", o->path, "dataset directory or token file")->required();
  bench_cmd->add_option("--split", o->split, "train or val")->capture_default_str();
  bench_cmd->add_option("--batch", o->batch, "global batch (samples)")->capture_default_str();
  bench_cmd->add_option("--steps", o->steps, "batches to read")->capture_default_str();
  bench_cmd->add_option("--prefetch", o->prefetch, "batches read ahead (0: in the loop)")->capture_default_str();
  bench_cmd->add_option("--seq-len", o->seq_len, "tokens: window length")->capture_default_str();
  bench_cmd->add_option("--compute-ms", o->compute_ms, "simulated work per step (the prefetch hides reads behind it)");
  bench_cmd->add_flag("!--no-normalize", o->normalize, "arrays: skip normalization");
  bench_cmd->add_option("--crop-padding", o->augment.crop_padding, "images: random crop with this zero padding");
  bench_cmd->add_flag("--flip", o->augment.flip, "images: random horizontal flip");
  bench_cmd->add_option("--noise-std", o->augment.noise_std, "images: additive Gaussian noise");
  bench_cmd->callback([&action, o, world] { action = [o, world] { return bench(*o, world); }; });
}

}  // namespace strata::cli
