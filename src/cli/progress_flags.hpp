#pragma once
// --progress and --quiet on a long command: progress lines on stderr when it is a terminal, none in batch logs,
// unless asked (core/progress.hpp: progress_wanted).
#include <CLI/CLI.hpp>

#include <memory>

#include "core/progress.hpp"

namespace strata::cli {

struct ProgressFlags {
  bool forced_on = false, forced_off = false;
  bool on() const { return progress_wanted(forced_on, forced_off); }
};

inline std::shared_ptr<ProgressFlags> add_progress_flags(CLI::App* cmd) {
  auto flags = std::make_shared<ProgressFlags>();
  cmd->add_flag("--progress", flags->forced_on, "progress lines on stderr even when it is not a terminal");
  cmd->add_flag("--quiet", flags->forced_off, "no progress lines (the default when stderr is not a terminal)");
  return flags;
}

}  // namespace strata::cli
