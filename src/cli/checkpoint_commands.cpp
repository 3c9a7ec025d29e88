#include "cli/checkpoint_commands.hpp"

#include "cli/progress_flags.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "ckpt/checkpoint.hpp"
#include "ckpt/checkpoint_dir.hpp"
#include "ckpt/inspect.hpp"
#include "ckpt/safetensors_export.hpp"
#include "core/error.hpp"

namespace strata::cli {
namespace {

// A checkpoint file, or a checkpoint directory: the checkpoint its `latest` names.
std::string resolve_checkpoint(const std::string& path) {
  if (!std::filesystem::is_directory(path)) return path;
  const std::string latest = ckpt::latest_checkpoint(path);
  STRATA_CHECK(!latest.empty(), "'{}': a directory without a 'latest' checkpoint", path);
  return latest;
}

const char* kCheckpointHelp = "checkpoint file (step-*.h5), or a checkpoint directory (the checkpoint 'latest' names)";

struct InspectOptions {
  std::string path;
  bool no_verify = false, config = false;
};

struct ExportOptions {
  std::string path, format, output;
};

}  // namespace

void add_checkpoint_commands(CLI::App& app, MPI_Comm world, Action& action) {
  auto in = std::make_shared<InspectOptions>();
  auto* inspect = app.add_subcommand(
      "inspect", "show a checkpoint: run state, layout, model, every tensor with its shape and checksum (verified)");
  inspect->add_option("checkpoint", in->path, kCheckpointHelp)->required();
  inspect->add_flag("--no-verify", in->no_verify, "do not read the tensors to recompute their checksums");
  inspect->add_flag("--config", in->config, "print only the resolved config (TOML) stored in the checkpoint");
  const auto inspect_progress = add_progress_flags(inspect);
  inspect->callback([&action, in, world, inspect_progress] {
    action = [in, world, inspect_progress] {
      if (rank_of(world) != 0) return 0;  // one process reads the file
      const std::string path = resolve_checkpoint(in->path);
      if (in->config) {
        const std::string toml = ckpt::read_checkpoint_meta(path).config_toml;
        fmt::print("{}{}", toml, !toml.empty() && toml.back() == '\n' ? "" : "\n");
        return 0;
      }
      Progress progress("inspect: verifying", "tensors", 0, inspect_progress->on() && !in->no_verify);
      const auto report = ckpt::inspect_checkpoint(path, !in->no_verify,
                                                   [&](int64_t done, int64_t total) { progress.update(done, total); });
      progress.finish();
      fmt::print("{}", ckpt::format_inspect_report(report));
      std::fflush(stdout);
      STRATA_CHECK(report.mismatches == 0,
                   "{}: checksum mismatch in tensor '{}' ({} of {} tensors differ from their "
                   "stored checksum)",
                   path, report.first_mismatch, report.mismatches, report.tensors.size());
      return 0;
    };
  });

  auto ex = std::make_shared<ExportOptions>();
  auto* export_cmd = app.add_subcommand(
      "export", "write a checkpoint's model weights (checksums verified) as safetensors or a strata-weights HDF5 file");
  export_cmd->add_option("checkpoint", ex->path, kCheckpointHelp)->required();
  export_cmd
      ->add_option("--format", ex->format,
                   "safetensors (PyTorch and others: safetensors.torch.load_file) or hdf5 (docs/weights-format.md: "
                   "strata eval --weights, perf/torch_gpt.load_strata_weights)")
      ->required()
      ->check(CLI::IsMember(ckpt::export_formats()));
  export_cmd->add_option("-o,--output", ex->output, "file to write (atomically: OUTPUT.PID.tmp, then renamed)")
      ->required();
  const auto export_progress = add_progress_flags(export_cmd);
  export_cmd->callback([&action, ex, world, export_progress] {
    action = [ex, world, export_progress] {
      if (rank_of(world) != 0) return 0;
      const std::string path = resolve_checkpoint(ex->path);
      Progress progress("export", "tensors", 0, export_progress->on());
      const auto r = ckpt::export_checkpoint(path, ex->output, ex->format,
                                             [&](int64_t done, int64_t total) { progress.update(done, total); });
      progress.finish();
      fmt::print("wrote {}: {} tensors, {:.2f} MiB as {} (step {} of {}) in {:.2f} s\n", ex->output, r.tensors,
                 double(r.bytes) / (1024.0 * 1024.0), ex->format, r.step, path, r.seconds);
      return 0;
    };
  });
}

}  // namespace strata::cli
