// MpiCommunicator on one rank: size-1 groups copy or return at once; counts MPI cannot take are rejected.
// The same operations at np 1, 2, 4, 8 are in tests/mpi/comm_test.cpp.
#include "comm/communicator.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <climits>

#include "core/error.hpp"

namespace strata {
namespace {

TEST(MpiCommunicator, SizeOneCopiesAndReturnsAtOnce) {
  MpiCommunicator c(MPI_COMM_WORLD);
  ASSERT_EQ(c.size(), 1);
  double v[3] = {1, -2, 3};
  c.all_reduce_max(v, 3);
  EXPECT_EQ(v[1], -2.0);
  float send[4] = {1, 2, 3, 4}, recv[4] = {};
  c.reduce_scatter_sum(send, recv, 4);
  EXPECT_EQ(recv[3], 4.0f);
  float gathered[2] = {};
  c.all_gather(send, gathered, 2);
  EXPECT_EQ(gathered[1], 2.0f);
  c.all_gather(send, send, 4);  // in place
  EXPECT_EQ(send[0], 1.0f);
  Request r = c.all_reduce_sum_async(v, 3);
  EXPECT_FALSE(r.pending());
  EXPECT_TRUE(c.test(r));
  c.wait(r);
  double out[3] = {};
  c.sendrecv(v, 3, 0, out, 3, 0, 7);  // to itself
  EXPECT_EQ(out[2], 3.0);
  EXPECT_THROW(c.send(v, 3, 1, 0), Error);   // no rank 1
  EXPECT_THROW(c.send(v, 3, 0, -1), Error);  // negative tag
}

TEST(MpiCommunicator, OverlapOtherThanInPlaceIsRejected) {
  MpiCommunicator c(MPI_COMM_WORLD);
  float buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_THROW(c.reduce_scatter_sum(buf, buf + 1, 4), Error);
  EXPECT_THROW(c.all_gather(buf + 1, buf, 4), Error);
  c.reduce_scatter_sum(buf, buf, 4);  // in place at rank 0
  EXPECT_EQ(buf[3], 4.0f);
}

TEST(MpiCommunicator, CountsAboveIntMaxAreRejectedWhereTheyCannotBeSplit) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const size_t huge = size_t(INT_MAX) + 1;
  float buf[2] = {};
  float* none = buf;
  EXPECT_THROW(c.reduce_scatter_sum(none, none + 1, huge), Error);
  EXPECT_THROW(c.all_gather(none, none + 1, huge), Error);
  EXPECT_THROW(c.all_reduce_sum_async(none, huge), Error);
  EXPECT_THROW(c.isend(none, huge, 0, 0), Error);
  try {
    c.irecv(none, huge, 0, 0);
    FAIL() << "expected strata::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("INT_MAX"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace strata
