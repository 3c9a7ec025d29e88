#pragma once
// <out_dir>/status.json: how a run ended, for batch scripts and `strata cv` ({"state": "complete" | "stopped" |
// "hung", "step": N, ...}). Removed when a run starts, so a status is always this run's; written atomically.
#include <cstdint>
#include <string>

namespace strata {

std::string status_path(const std::string& out_dir);

// The file's "state", or "" when it is missing or unreadable (a run that has not ended, or died while starting).
std::string read_run_state(const std::string& status_file);

// Writes {"state", "step"} unless the watchdog has reported a hang there: while MPI_Abort ends the job, a stopped
// rank may be continued and the ranks reach a graceful stop (the launcher's SIGTERM) that must not overwrite it.
void write_run_status(const std::string& out_dir, const char* state, int64_t step);

}  // namespace strata
