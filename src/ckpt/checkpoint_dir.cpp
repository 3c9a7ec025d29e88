#include "ckpt/checkpoint_dir.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace strata::ckpt {
namespace fs = std::filesystem;

namespace {
// The step of a checkpoint file name, or -1.
int64_t step_of(const std::string& name) {
  int64_t step = -1;
  char tail[8] = {0};
  if (std::sscanf(name.c_str(), "step-%ld.%3s", &step, tail) == 2 && std::string(tail) == "h5" &&
      name == checkpoint_name(step))
    return step;
  return -1;
}
}  // namespace

std::string checkpoint_name(int64_t step) { return fmt::format("step-{:08d}.h5", step); }

void commit_checkpoint(const std::string& dir, int64_t step, int64_t keep_last, int64_t keep_every) {
  const std::string name = checkpoint_name(step);
  const std::string path = (fs::path(dir) / name).string();
  commit_file(path + ".tmp", path);  // fsync, rename, fsync the directory
  crash_point("before_latest", step, 0);
  write_file_atomically((fs::path(dir) / "latest").string(), name + "\n");
  // Prune: everything but the newest keep_last and the multiples of keep_every (never the one just written).
  const auto all = list_checkpoints(dir);
  for (size_t i = size_t(keep_last); i < all.size(); ++i) {
    const int64_t s = step_of(fs::path(all[i]).filename().string());
    if (s == step || (keep_every > 0 && s % keep_every == 0)) continue;
    std::error_code ec;
    fs::remove(all[i], ec);
  }
}

int64_t checkpoint_step(const std::string& path) { return step_of(fs::path(path).filename().string()); }

void set_aside_after(const std::string& dir, int64_t step) {
  // `latest` first: a crash in between leaves it naming a complete checkpoint.
  write_file_atomically((fs::path(dir) / "latest").string(), checkpoint_name(step) + "\n");
  for (const auto& path : list_checkpoints(dir)) {
    if (step_of(fs::path(path).filename().string()) <= step) continue;
    std::error_code ec;
    fs::rename(path, path + ".rolled-back", ec);
    STRATA_CHECK(!ec, "'{}': cannot set the checkpoint aside after a rollback: {}", path, ec.message());
  }
  fsync_dir(dir);
}

std::string latest_checkpoint(const std::string& dir) {
  const fs::path file = fs::path(dir) / "latest";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return "";
  std::ifstream in(file);
  std::string name;
  std::getline(in, name);
  STRATA_CHECK(step_of(name) >= 0, "'{}': names '{}', expected a checkpoint file like {}", file.string(), name,
               checkpoint_name(100));
  return (fs::path(dir) / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const int64_t s = step_of(name);
    if (s >= 0 && entry.is_regular_file()) found.emplace_back(s, entry.path().string());
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void remove_temporaries(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".tmp") fs::remove(entry.path(), ec);
}

void crash_point(const char* point, int64_t step, int rank) {
  static const std::string spec = [] {
    const char* v = std::getenv("STRATA_CRASH_AT");
    return std::string(v ? v : "");
  }();
  if (spec.empty()) return;
  char name[64] = {0};
  long s = -1, r = -2;
  if (std::sscanf(spec.c_str(), "%63[^:]:%ld:%ld", name, &s, &r) != 3) return;
  if (std::string(name) == point && s == step && (r == -1 || r == rank)) ::raise(SIGKILL);
}

}  // namespace strata::ckpt
