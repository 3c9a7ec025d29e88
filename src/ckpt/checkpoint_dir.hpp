#pragma once
// A directory of checkpoints: `step-00000100.h5` files, a `latest` file naming the newest complete one, and
// temporaries (`*.tmp`) that only an interrupted save leaves. Commit protocol (DESIGN.md principle 10): the
// collective write goes to `NAME.tmp` and is synced; then rank 0 renames it to NAME, fsyncs the directory, writes
// `latest.tmp` naming it, fsyncs and renames it over `latest`, fsyncs the directory again, and only then prunes.
// A crash at any moment therefore leaves `latest` naming a complete checkpoint (or absent, before the first).
#include <cstdint>
#include <string>
#include <vector>

namespace strata::ckpt {

std::string checkpoint_name(int64_t step);  // "step-00000100.h5"

// After every rank finished writing `dir/checkpoint_name(step).tmp`: rename, point `latest` at it, prune to the
// newest keep_last plus every multiple of keep_every (0: none). One process (rank 0).
void commit_checkpoint(const std::string& dir, int64_t step, int64_t keep_last, int64_t keep_every);

// The file `latest` names (full path), or "" when there is none.
std::string latest_checkpoint(const std::string& dir);

// Every complete checkpoint in `dir` (full paths), newest first.
std::vector<std::string> list_checkpoints(const std::string& dir);

// The step of a checkpoint path (its file name), or -1 when it is not one.
int64_t checkpoint_step(const std::string& path);

// The step guard's rollback (one process, rank 0): renames the checkpoints after `step` to NAME.rolled-back (kept for
// a post-mortem, no longer checkpoints) and points `latest` at step's checkpoint.
void set_aside_after(const std::string& dir, int64_t step);

// Removes the `*.tmp` files an interrupted save left (called before a new save).
void remove_temporaries(const std::string& dir);

// Crash injection for the fault tests: when the environment variable STRATA_CRASH_AT is "POINT:STEP:RANK" and
// matches (RANK -1: any rank), the process kills itself with SIGKILL, exactly what `kill -9` would do.
void crash_point(const char* point, int64_t step, int rank);

}  // namespace strata::ckpt
