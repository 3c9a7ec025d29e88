#pragma once
// A pending non-blocking communication (DESIGN.md principles 7, 8): move-only, owns its handle.
// The implementation that created it (MPI, NCCL) stores its handle here together with a table of
// functions that complete, poll and release that handle, so requests of different backends can be
// waited on together and the type stays free of backend headers other than mpi.h.
#include <mpi.h>

namespace strata {

class Request {
 public:
  // How a backend completes, polls and releases the handle it stored.
  struct Ops {
    const char* backend;     // "MPI", "NCCL": for error messages
    void (*wait)(Request&);  // blocks until complete; throws strata::Error
    bool (*test)(Request&);  // progresses; true (and released) once complete; throws strata::Error
    void (*release)(Request&, bool unwinding) noexcept;  // from the destructor, see ~Request
  };
  // The backend's handle: an MPI request, or an opaque pointer (a cudaEvent_t for NCCL).
  struct Handle {
    MPI_Request mpi = MPI_REQUEST_NULL;
    void* ptr = nullptr;
  };

  Request() = default;  // a completed request: wait/test return at once
  Request(const Ops* ops, Handle handle) : ops_(ops), handle_(handle) {}
  Request(Request&& other) noexcept : ops_(other.ops_), handle_(other.handle_) { other.ops_ = nullptr; }
  Request& operator=(Request&& other) noexcept;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  // A request still pending when destroyed is completed here (blocking; an error is printed to stderr
  // since a destructor cannot throw), so the buffers it uses are never left in flight. While an exception
  // unwinds it is abandoned instead (the job is failing; waiting could hang on a peer that is gone).
  ~Request();

  bool pending() const { return ops_ != nullptr; }

  // For backends only.
  const Ops* ops() const { return ops_; }
  Handle& handle() { return handle_; }
  void mark_complete() { ops_ = nullptr, handle_ = Handle{}; }

 private:
  const Ops* ops_ = nullptr;
  Handle handle_;
};

}  // namespace strata
