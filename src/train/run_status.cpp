#include "train/run_status.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.hpp"

namespace strata {

std::string status_path(const std::string& out_dir) {
  return (std::filesystem::path(out_dir) / "status.json").string();
}

std::string read_run_state(const std::string& status_file) {
  std::ifstream in(status_file);
  if (!in) return {};
  try {
    nlohmann::json status;
    in >> status;
    return status.is_object() ? status.value("state", "") : "";
  } catch (const nlohmann::json::exception&) {
    return {};
  }
}

void write_run_status(const std::string& out_dir, const char* state, int64_t step) {
  const auto path = status_path(out_dir);
  if (read_run_state(path) == "hung") return;
  write_file_atomically(path, fmt::format("{{\"state\": \"{}\", \"step\": {}}}\n", state, step));
}

}  // namespace strata
