#include "core/error.hpp"

#include <hdf5.h>
#include <mpi.h>

#include <atomic>

namespace strata {
namespace {
std::atomic<int> g_rank{-1};

std::string basename_of(const char* path) {
  std::string p(path);
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Collects HDF5's error stack into one line (innermost description last).
herr_t append_frame(unsigned, const H5E_error2_t* e, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (!text->empty()) *text += "; ";
  *text += fmt::format("{}(): {}", e->func_name ? e->func_name : "?", e->desc ? e->desc : "?");
  return 0;
}
}  // namespace

Error::Error(const std::string& what, const char* file, int line)
    : std::runtime_error(what), rank_(g_rank.load()), where_(fmt::format("{}:{}", basename_of(file), line)) {}

void set_error_rank(int rank) { g_rank = rank; }
int error_rank() { return g_rank; }

void throw_error(const char* file, int line, const std::string& message) { throw Error(message, file, line); }

void throw_mpi_error(const char* file, int line, const char* call, int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
  throw Error(fmt::format("MPI call {} failed: {}", call, text), file, line);
}

void throw_hdf5_error(const char* file, int line, const char* call) {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, append_frame, &stack);
  H5Eclear2(H5E_DEFAULT);
  throw Error(fmt::format("HDF5 call {} failed: {}", call, stack.empty() ? "no error stack" : stack), file, line);
}

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

}  // namespace strata
