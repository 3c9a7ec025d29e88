#include "cli/preprocess_commands.hpp"

#include "cli/progress_flags.hpp"

#include <fmt/format.h>

#include <fmt/ranges.h>

#include <cstdio>
#include <memory>

#include "data/preprocess_arrays.hpp"
#include "data/preprocess_text.hpp"

namespace strata::cli {
namespace {

// The cleaning flags shared by `preprocess text` and `preprocess bpe-train`.
void add_cleaning_flags(CLI::App* cmd, bool& clean, data::TextCleanOptions& c, bool& dedup) {
  cmd->add_flag("!--no-clean", clean, "keep every document's bytes exactly (no normalization or whitespace cleanup)");
  cmd->add_option("--normalize", c.normalization, "Unicode normalization: none, nfc or nfkc")
      ->check(CLI::IsMember({"none", "nfc", "nfkc"}))
      ->capture_default_str();
  cmd->add_flag("!--keep-control", c.strip_control,
                "keep control and format characters (default: drop all but \\n, \\t)");
  cmd->add_flag("!--keep-whitespace", c.collapse_whitespace,
                "keep whitespace as is (default: collapse runs, trim line ends, at most one empty line)");
  cmd->add_flag("--replace-invalid-utf8", c.replace_invalid_utf8,
                "replace invalid UTF-8 bytes with U+FFFD (default: an error naming the document and offset)");
  cmd->add_flag("!--no-dedup", dedup, "keep documents identical to an earlier one");
}

// `preprocess images` and `preprocess sequences`: the same options, the kind differs.
void add_array_command(CLI::App* pre, const std::string& kind, MPI_Comm world, Action& action) {
  auto o = std::make_shared<data::ArrayPreprocessOptions>();
  o->kind = kind;
  const bool images = kind == "images";
  auto* cmd = pre->add_subcommand(
      kind, images ? "NumPy/raw images [N,C,H,W] or [N,H,W] + labels -> sharded images dataset with normalization stats"
                   : "NumPy/raw sequences [N,T,F] + labels [N] or [N,T] -> sharded sequences dataset");
  cmd->add_option("--x", o->x_path, "samples: .npy file (or raw file with --raw-x-dtype/--raw-x-shape)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--y", o->y_path, "integer labels: .npy file (or raw with --raw-y-dtype)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "dataset directory")->required();
  cmd->add_option("--shards", o->shards, "shards per split")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--val-fraction", o->val_fraction, "share of samples for validation")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "which samples go to validation")->capture_default_str();
  cmd->add_option("--num-classes", o->num_classes, "labels are in [0, num_classes) (0: max label + 1)");
  cmd->add_option("--raw-x-dtype", o->raw_x_dtype, "x is a headerless file of this dtype (uint8, float32, ...)");
  cmd->add_option("--raw-x-shape", o->raw_x_shape, "shape of raw x, e.g. 1000,3,32,32")->delimiter(',');
  cmd->add_option("--raw-y-dtype", o->raw_y_dtype, "y is a headerless file of this integer dtype");
  cmd->add_option("--raw-y-shape", o->raw_y_shape, "shape of raw y (default: 1-D)")->delimiter(',');
  if (images) {
    cmd->add_flag("--channels-last", o->channels_last, "x is [N, H, W, C]");
    auto resize = std::make_shared<std::string>();
    cmd->add_option("--resize", *resize, "bilinear resize of every image to HxW (stored as float32)")
        ->check([](const std::string& v) {
          int h = 0, w = 0;
          char x = 0;
          return std::sscanf(v.c_str(), "%d%c%d", &h, &x, &w) == 3 && x == 'x' && h > 0 && w > 0
                     ? std::string()
                     : std::string("expected HxW, e.g. 32x32");
        });
    cmd->callback([o, resize] {
      if (!resize->empty()) std::sscanf(resize->c_str(), "%dx%d", &o->resize_h, &o->resize_w);
    });
  }
  const auto progress = add_progress_flags(cmd);
  cmd->final_callback([&action, o, world, progress] {
    action = [o, world, progress] {
      o->progress = progress->on();
      const auto r = data::preprocess_arrays(*o, world);
      if (rank_of(world) == 0)
        fmt::print(
            "wrote {}: {} {} ({} train, {} val) of shape [{}] as {}, {} classes, train mean [{:.4g}] std "
            "[{:.4g}], in {:.2f} s\n",
            o->output, r.samples, o->kind, r.train_samples, r.val_samples, fmt::join(r.sample_shape, ", "), r.dtype,
            r.num_classes, fmt::join(r.mean, ", "), fmt::join(r.std, ", "), r.seconds);
      return 0;
    };
  });
}

}  // namespace

void add_preprocess_commands(CLI::App& app, MPI_Comm world, Action& action) {
  auto* pre = app.add_subcommand("preprocess", "build datasets (runs on every rank when launched with mpirun)");
  pre->require_subcommand(1);

  auto text = std::make_shared<data::TextPreprocessOptions>();
  auto* text_cmd = pre->add_subcommand(
      "text", "text files -> token dataset: clean, filter, de-duplicate, split, tokenize (byte or BPE), shard");
  text_cmd->add_option("inputs", text->inputs, "text files")->required()->check(CLI::ExistingFile);
  text_cmd->add_option("-o,--output", text->output, "output .h5 file, or dataset directory with --shards")->required();
  text_cmd->add_option("--doc-separator", text->doc_separator,
                       "a line equal to this separates documents (e.g. % for fortune files); default: one per file");
  text_cmd->add_option("--val-fraction", text->val_fraction, "share of documents for validation")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  text_cmd->add_option("--seed", text->seed, "which documents go to validation")->capture_default_str();
  text_cmd
      ->add_option("--shards", text->shards,
                   "write a sharded dataset: OUTPUT becomes a directory of this many shards per split and a "
                   "manifest (0: one file)")
      ->check(CLI::NonNegativeNumber);
  text_cmd->add_option("--bpe", text->bpe, "encode with this BPE tokenizer (from `strata preprocess bpe-train`)")
      ->check(CLI::ExistingFile);
  text_cmd->add_option("--min-bytes", text->min_bytes, "drop documents shorter than this after cleaning")
      ->capture_default_str();
  text_cmd->add_option("--max-bytes", text->max_bytes, "drop documents longer than this after cleaning (0: no limit)")
      ->capture_default_str();
  add_cleaning_flags(text_cmd, text->clean, text->cleaning, text->dedup);
  const auto text_progress = add_progress_flags(text_cmd);
  text_cmd->callback([&action, text, world, text_progress] {
    action = [text, world, text_progress] {
      text->progress = text_progress->on();
      const auto r = data::preprocess_text(*text, world);
      if (rank_of(world) == 0)
        fmt::print(
            "wrote {}: {} documents ({} train, {} val) of {} read ({} empty, {} too short, {} too long, {} "
            "duplicates dropped), {} train tokens, {} val tokens, vocab {}, from {} bytes in {:.2f} s "
            "({:.1f} MB/s)\n",
            text->output, r.documents, r.train_documents, r.val_documents, r.documents_in, r.dropped_empty,
            r.dropped_short, r.dropped_long, r.dropped_duplicate, r.train_tokens, r.val_tokens, r.vocab_size,
            r.bytes_in, r.seconds, r.seconds > 0 ? double(r.bytes_in) / r.seconds / 1e6 : 0.0);
      return 0;
    };
  });

  add_array_command(pre, "images", world, action);
  add_array_command(pre, "sequences", world, action);

  auto bpe = std::make_shared<data::BpeTrainOptions>();
  auto* bpe_cmd = pre->add_subcommand("bpe-train", "learn a byte-level BPE vocabulary from text files");
  bpe_cmd->add_option("inputs", bpe->inputs, "text files")->required()->check(CLI::ExistingFile);
  bpe_cmd->add_option("-o,--output", bpe->output, "tokenizer JSON file to write")->required();
  bpe_cmd->add_option("--vocab-size", bpe->vocab_size, "ids in all: 256 bytes + merges + end-of-text")
      ->check(CLI::Range(int64_t{257}, int64_t{1} << 31))
      ->capture_default_str();
  bpe_cmd->add_option("--doc-separator", bpe->doc_separator, "a line equal to this separates documents");
  add_cleaning_flags(bpe_cmd, bpe->clean, bpe->cleaning, bpe->dedup);
  const auto bpe_progress = add_progress_flags(bpe_cmd);
  bpe_cmd->callback([&action, bpe, world, bpe_progress] {
    action = [bpe, world, bpe_progress] {
      if (rank_of(world) != 0) return 0;  // training is sequential: one rank learns and writes
      bpe->progress = bpe_progress->on();
      const auto r = data::train_bpe_from_files(*bpe);
      fmt::print("wrote {}: vocab {} ({} merges) from {} documents, {} bytes in {:.1f} s\n", bpe->output, r.vocab_size,
                 r.vocab_size - 257, r.documents, r.bytes, r.seconds);
      return 0;
    };
  });
}

}  // namespace strata::cli
