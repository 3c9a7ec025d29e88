#pragma once
// The one commit step every writer uses (datasets, tokenizers, manifests, weights, checkpoints, exports): data goes
// to a temporary beside `path`; commit_file fsyncs it, renames it over `path` and fsyncs the directory, so a crash
// at any moment leaves either the old file or the complete new one under the final name.
#include <functional>
#include <string>

namespace strata {

// fsync `tmp` (written and closed), rename it to `path`, fsync the directory (best effort where a file system
// refuses to fsync directories). Errors name the files.
void commit_file(const std::string& tmp, const std::string& path);

// `path.PID.tmp`: the temporary this process writes `path` through. Per process, because independent processes may
// write the same file at once (two Slurm array tasks that both finish a cross-validation write its summary): each
// then renames its own complete file and the last rename wins, instead of one renaming the other's half-written file.
std::string temporary_path(const std::string& path);

// Calls write(tmp) with tmp = temporary_path(path) (it creates, writes and closes that file), then
// commit_file(tmp, path).
// If either throws, the temporary is removed and the error rethrown.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);

// Writes `content` to `path` through write_atomically.
void write_file_atomically(const std::string& path, const std::string& content);

// fsync of a directory (after renames in it); throws naming it.
void fsync_dir(const std::string& dir);

}  // namespace strata
