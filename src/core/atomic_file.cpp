#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"

namespace strata {
namespace fs = std::filesystem;

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  STRATA_CHECK(fd >= 0, "'{}': cannot open directory to fsync", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  STRATA_CHECK(rc == 0, "'{}': fsync of the directory failed", dir);
}

void commit_file(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  STRATA_CHECK(fd >= 0, "'{}': cannot reopen to fsync", tmp);
  const int rc = ::fsync(fd);
  ::close(fd);
  STRATA_CHECK(rc == 0, "'{}': fsync failed", tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  STRATA_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  // Best effort: the rename is durable once the directory is synced; some file systems refuse to.
  const int dir = ::open(fs::absolute(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

std::string temporary_path(const std::string& path) { return path + "." + std::to_string(::getpid()) + ".tmp"; }

void write_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = temporary_path(path);
  try {
    write(tmp);
    commit_file(tmp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_file_atomically(const std::string& path, const std::string& content) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    STRATA_CHECK(out.good(), "'{}': cannot create", tmp);
    out << content;
    out.flush();
    STRATA_CHECK(out.good(), "'{}': write failed", tmp);
  });
}

}  // namespace strata
