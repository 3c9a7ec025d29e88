// GoogleTest main for the MPI tests (tests/mpi, run under mpiexec at np 1, 2, 4, 8): MPI and Kokkos up
// for the whole binary; rank 0 prints GoogleTest's usual output, the other ranks print only their failed
// assertions (prefixed with the rank); the exit code is the maximum over ranks, so one failing rank fails
// the run.
#include <gtest/gtest.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <string>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace {

// On ranks other than 0: one line per failed assertion, nothing else.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestStart(const ::testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  // Called with GoogleTest's lock held: must not call back into UnitTest (current_test_info would deadlock).
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s: %s:%d: %s\n", rank_, test_.c_str(), r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.message());
  }

 private:
  int rank_;
  std::string test_ = "?";
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  strata::set_error_rank(rank);
  int result = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    strata::h5::quiet_errors();
    ::testing::InitGoogleTest(&argc, argv);
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    if (rank != 0) {
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new FailurePrinter(rank));
    } else {
      std::printf("[ MPI      ] %d rank%s\n", size, size == 1 ? "" : "s");
    }
    result = RUN_ALL_TESTS();
  }
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && worst != result) std::printf("[ MPI      ] another rank failed (exit code %d)\n", worst);
  MPI_Finalize();
  return worst;
}
