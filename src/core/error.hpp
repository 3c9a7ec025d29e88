#pragma once
// strata::Error and the checks every library call goes through. Library code throws; `main` catches,
// prints one line per rank and exits non-zero (DESIGN.md, principle 11).
#include <fmt/format.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace strata {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, const char* file, int line);
  int rank() const { return rank_; }
  const std::string& where() const { return where_; }

 private:
  int rank_;
  std::string where_;
};

// The rank printed in error messages; set once MPI is up (-1 before).
void set_error_rank(int rank);
int error_rank();

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
[[noreturn]] void throw_mpi_error(const char* file, int line, const char* call, int code);
[[noreturn]] void throw_hdf5_error(const char* file, int line, const char* call);

// Debian's parallel HDF5 (like most parallel builds) is not thread-safe, and the data prefetch thread reads while
// the main thread evaluates or saves: every HDF5 call in the process holds this lock (STRATA_H5, h5::Handle and
// the h5:: helpers take it; recursive, so helpers may nest).
std::recursive_mutex& hdf5_mutex();

}  // namespace strata

// STRATA_CHECK(cond, "fmt {}", args...): throws strata::Error with the formatted message.
#define STRATA_CHECK(cond, ...)                                                       \
  do {                                                                                \
    if (!(cond)) ::strata::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)

#define STRATA_FAIL(...) ::strata::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__))

// Wraps an MPI call; on failure the message carries MPI_Error_string's text.
#define STRATA_MPI(call)                                                                           \
  do {                                                                                             \
    int strata_mpi_rc_ = (call);                                                                   \
    if (strata_mpi_rc_ != 0) ::strata::throw_mpi_error(__FILE__, __LINE__, #call, strata_mpi_rc_); \
  } while (0)

// Wraps an HDF5 call returning herr_t or hid_t (negative = failure); yields the value.
#define STRATA_H5(call)                                                            \
  ([&]() {                                                                         \
    std::lock_guard<std::recursive_mutex> strata_h5_lock_(::strata::hdf5_mutex()); \
    auto strata_h5_rc_ = (call);                                                   \
    if (strata_h5_rc_ < 0) ::strata::throw_hdf5_error(__FILE__, __LINE__, #call);  \
    return strata_h5_rc_;                                                          \
  }())
