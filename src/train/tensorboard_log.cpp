#include "train/tensorboard_log.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <vector>

#include "core/error.hpp"
#include "core/event_file.hpp"

namespace strata {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool is_event_file(const std::filesystem::path& p) {
  return p.filename().string().rfind("events.out.tfevents.", 0) == 0 && p.extension() != ".tmp";
}

// Keeps the records of `path` up to `step` (rewritten through a temporary file and a rename).
void truncate_after(const std::filesystem::path& path, int64_t step) {
  bool intact = true;
  const auto records = tb::read_records(path.string(), &intact);
  std::string kept;
  size_t dropped = 0;
  for (const auto& r : records) {
    if (tb::event_step(r) <= step)
      kept += tb::frame_record(r);
    else
      ++dropped;
  }
  if (dropped == 0 && intact) return;
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << kept;
    STRATA_CHECK(out.good(), "cannot write '{}'", tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

TensorBoardLog::TensorBoardLog(const std::string& dir, int64_t resume_step) {
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!is_event_file(entry.path())) continue;
    if (resume_step < 0)
      std::filesystem::remove(entry.path());  // a new run replaces the old one
    else
      truncate_after(entry.path(), resume_step);
  }
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  // Seconds first and zero-padded: later segments of a run sort after earlier ones.
  path_ = (std::filesystem::path(dir) /
           fmt::format("events.out.tfevents.{:010d}.{}.{}.strata", int64_t(now_seconds()), host, int(getpid())))
              .string();
  out_.open(path_, std::ios::binary | std::ios::app);
  STRATA_CHECK(out_.good(), "cannot write TensorBoard events to '{}'", path_);
  write(tb::file_version_event(now_seconds()));
}

void TensorBoardLog::write(const std::string& event) {
  out_ << tb::frame_record(event);
  out_.flush();
  STRATA_CHECK(out_.good(), "write to '{}' failed", path_);
}

void TensorBoardLog::scalar(const std::string& tag, double value, int64_t step) {
  write(tb::scalar_event(now_seconds(), step, tag, float(value)));
}

void TensorBoardLog::text(const std::string& tag, const std::string& text, int64_t step) {
  write(tb::text_event(now_seconds(), step, tag, text));
}

}  // namespace strata
