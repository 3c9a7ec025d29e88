#pragma once
// The one commit step every writer uses (datasets, tokenizers, manifests, weights, checkpoints, exports): data goes
// to `path.tmp`; commit_file fsyncs it, renames it over `path` and fsyncs the directory, so a crash at any moment
// leaves either the old file or the complete new one under the final name.
#include <string>

namespace strata {

// fsync `tmp` (written and closed), rename it to `path`, fsync the directory (best effort where a file system
// refuses to fsync directories). Errors name the files.
void commit_file(const std::string& tmp, const std::string& path);

// Writes `content` to `path` through `path.tmp` and commit_file; the temporary is removed on failure.
void write_file_atomically(const std::string& path, const std::string& content);

// fsync of a directory (after renames in it); throws naming it.
void fsync_dir(const std::string& dir);

}  // namespace strata
