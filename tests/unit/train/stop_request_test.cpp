// StopRequest (train/stop_request.hpp): a stop signal is seen at the next agreement; one that arrives after the
// training loop (the request destroyed, the run finishing its evaluation and saves) does not kill the process.
#include "train/stop_request.hpp"

#include <gtest/gtest.h>

#include <csignal>

namespace strata {
namespace {

TEST(StopRequest, ASignalIsAgreedOnAtTheNextCheck) {
  StopRequest stop(0);
  EXPECT_FALSE(stop.agreed(MPI_COMM_SELF));
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  EXPECT_TRUE(stop.agreed(MPI_COMM_SELF));
  EXPECT_EQ(stop.reason(), "SIGUSR1");
}

TEST(StopRequest, ASignalAfterTheLoopIsIgnored) {
  { StopRequest stop(0); }
  // With the default action restored this would end the test binary (and a completed job would be reported failed).
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  ASSERT_EQ(std::raise(SIGTERM), 0);
  StopRequest fresh(0);  // a new request starts clean
  EXPECT_FALSE(fresh.agreed(MPI_COMM_SELF));
}

}  // namespace
}  // namespace strata
