#include "cli/preprocess_commands.hpp"

#include <fmt/format.h>

#include <memory>

#include "data/preprocess_text.hpp"

namespace strata::cli {
namespace {

int rank_of(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

// The cleaning flags shared by `preprocess text` and `preprocess bpe-train`.
void add_cleaning_flags(CLI::App* cmd, bool& clean, data::TextCleanOptions& c, bool& dedup) {
  cmd->add_flag("!--no-clean", clean, "keep every document's bytes exactly (no normalization or whitespace cleanup)");
  cmd->add_option("--normalize", c.normalization, "Unicode normalization: none, nfc or nfkc")
      ->check(CLI::IsMember({"none", "nfc", "nfkc"}))
      ->capture_default_str();
  cmd->add_flag("!--keep-control", c.strip_control, "keep control and format characters (default: drop all but \\n, \\t)");
  cmd->add_flag("!--keep-whitespace", c.collapse_whitespace,
                "keep whitespace as is (default: collapse runs, trim line ends, at most one empty line)");
  cmd->add_flag("--replace-invalid-utf8", c.replace_invalid_utf8,
                "replace invalid UTF-8 bytes with U+FFFD (default: an error naming the document and offset)");
  cmd->add_flag("!--no-dedup", dedup, "keep documents identical to an earlier one");
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
  text_cmd->add_option("--shards", text->shards,
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
  text->progress = true;
  text_cmd->add_flag("!--quiet", text->progress, "no progress lines");
  text_cmd->callback([&action, text, world] {
    action = [text, world] {
      const auto r = data::preprocess_text(*text, world);
      if (rank_of(world) == 0)
        fmt::print("wrote {}: {} documents ({} train, {} val) of {} read ({} empty, {} too short, {} too long, {} "
                   "duplicates dropped), {} train tokens, {} val tokens, vocab {}, from {} bytes in {:.2f} s "
                   "({:.1f} MB/s)\n",
                   text->output, r.documents, r.train_documents, r.val_documents, r.documents_in, r.dropped_empty,
                   r.dropped_short, r.dropped_long, r.dropped_duplicate, r.train_tokens, r.val_tokens, r.vocab_size,
                   r.bytes_in, r.seconds, r.seconds > 0 ? double(r.bytes_in) / r.seconds / 1e6 : 0.0);
      return 0;
    };
  });

  auto bpe = std::make_shared<data::BpeTrainOptions>();
  auto* bpe_cmd = pre->add_subcommand("bpe-train", "learn a byte-level BPE vocabulary from text files");
  bpe_cmd->add_option("inputs", bpe->inputs, "text files")->required()->check(CLI::ExistingFile);
  bpe_cmd->add_option("-o,--output", bpe->output, "tokenizer JSON file to write")->required();
  bpe_cmd->add_option("--vocab-size", bpe->vocab_size, "ids in all: 256 bytes + merges + end-of-text")
      ->check(CLI::Range(int64_t{257}, int64_t{1} << 31))
      ->capture_default_str();
  bpe_cmd->add_option("--doc-separator", bpe->doc_separator, "a line equal to this separates documents");
  add_cleaning_flags(bpe_cmd, bpe->clean, bpe->cleaning, bpe->dedup);
  bpe_cmd->callback([&action, bpe, world] {
    action = [bpe, world] {
      if (rank_of(world) != 0) return 0;  // training is sequential: one rank learns and writes
      bpe->progress = true;
      const auto r = data::train_bpe_from_files(*bpe);
      fmt::print("wrote {}: vocab {} ({} merges) from {} documents, {} bytes in {:.1f} s\n", bpe->output, r.vocab_size,
                 r.vocab_size - 257, r.documents, r.bytes, r.seconds);
      return 0;
    };
  });
}

}  // namespace strata::cli
