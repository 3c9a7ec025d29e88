#include "cli/prune_command.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/model_attrs.hpp"
#include "models/model_factory.hpp"
#include "nn/weights_io.hpp"
#include "train/model_source.hpp"
#include "train/structured_pruning.hpp"

namespace strata::cli {
namespace {

struct PruneOptions {
  std::string weights, out;
  StructureFractions fractions;
};

HostTensors read_tensors(const std::string& path, const ModelConfig& model) {
  ParamBuffer<float> params(model_tensors(model));
  load_weights(path, params, model);
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), params.params());
  HostTensors tensors;
  for (const auto& s : params.specs())
    tensors[s.name] = std::vector<float>(host.data() + s.offset, host.data() + s.offset + s.numel());
  return tensors;
}

void write_tensors(const std::string& path, const ModelConfig& model, const HostTensors& tensors) {
  ParamBuffer<float> params(model_tensors(model));
  auto host = Kokkos::create_mirror_view(params.params());
  for (const auto& s : params.specs()) {
    const auto it = tensors.find(s.name);
    STRATA_CHECK(it != tensors.end() && int64_t(it->second.size()) == s.numel(),
                 "strata prune: the pruned tensor '{}' does not fit the smaller model", s.name);
    std::copy(it->second.begin(), it->second.end(), host.data() + s.offset);
  }
  Kokkos::deep_copy(params.params(), host);
  save_weights(path, params, model);
}

int run_prune(const PruneOptions& o, MPI_Comm world) {
  int rank = 0;
  STRATA_MPI(MPI_Comm_rank(world, &rank));
  // A checkpoint is exported to a weights file first (next to the output, removed afterwards).
  const std::string exported = o.out + fmt::format(".source-{}.h5", getpid());
  const std::string source = weights_file_of(o.weights, exported, world);
  if (rank == 0) {
    ModelConfig model;
    {
      auto file = h5::open_file(source);
      model = read_model_attrs(file, "", fmt::format("strata prune: '{}'", o.weights));
    }
    const SmallerModel smaller = prune_structures(model, read_tensors(source, model), o.fractions);
    write_tensors(o.out, smaller.model, smaller.tensors);
    if (source == exported) std::filesystem::remove(exported);
    const int64_t before = model_size(model).parameters, after = model_size(smaller.model).parameters;
    for (const auto& line : smaller.removed) fmt::print("prune: {}\n", line);
    std::string fields;  // the fields that changed, as --set reads them (lists as 8,16)
    const auto original = model_fields(model);
    for (const auto& [name, value] : model_fields(smaller.model))
      if (std::find(original.begin(), original.end(), std::pair{name, value}) == original.end())
        fields += fmt::format(" --set model.{}={}", name,
                              std::holds_alternative<std::vector<int64_t>>(value)
                                  ? fmt::format("{}", fmt::join(std::get<std::vector<int64_t>>(value), ","))
                                  : format_value(value));
    fmt::print(
        "prune: wrote {}: {} {} -> {} parameters ({:.1f}%); evaluate or fine-tune it with{} (the smaller model's "
        "fields)\n",
        o.out, model.kind, before, after, 100.0 * double(after) / double(before), fields);
  }
  STRATA_MPI(MPI_Barrier(world));
  return 0;
}

}  // namespace

void add_prune_command(CLI::App& app, MPI_Comm world, Action& action) {
  auto options = std::make_shared<PruneOptions>();
  auto* cmd = app.add_subcommand(
      "prune",
      "structured pruning: remove the conv channels, recurrent units, hidden units, attention heads or MLP units with "
      "the smallest L1 norm and write the smaller model's weights (for strata eval, or fine-tuning with --init-from)");
  cmd->add_option("weights", options->weights, "weights file, checkpoint file or checkpoint directory")->required();
  cmd->add_option("--out", options->out, "the smaller model's weights file")->required();
  cmd->add_option("--channels", options->fractions.channels,
                  "cnn: the fraction of every conv block's channels to remove (the same number from each norm group)");
  cmd->add_option("--units", options->fractions.units, "lstm: the fraction of every recurrent layer's units to remove");
  cmd->add_option("--hidden", options->fractions.hidden,
                  "cnn, lstm: the fraction of the hidden layer's units (model.hidden) to remove");
  cmd->add_option("--heads", options->fractions.heads,
                  "gpt: the fraction of every block's attention heads to remove (the others keep their width)");
  cmd->add_option("--mlp", options->fractions.mlp, "gpt: the fraction of every block's MLP units to remove");
  cmd->callback([options, world, &action] { action = [options, world] { return run_prune(*options, world); }; });
}

}  // namespace strata::cli
