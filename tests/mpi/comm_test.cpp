// MpiCommunicator and ProcessGrid at whatever world size the test runs at (ctest: np 1, 2, 4, 8). Every
// operation is checked on values against closed forms, on float and double.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <tuple>
#include <vector>

#include "comm/communicator.hpp"
#include "comm/process_grid.hpp"
#include "core/error.hpp"

namespace strata {
namespace {

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

template <class T>
class Collectives : public ::testing::Test {
 protected:
  MpiCommunicator comm{MPI_COMM_WORLD};
  int r = comm.rank(), n = comm.size();
};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Collectives, Types);

TYPED_TEST(Collectives, AllReduceSumEqualsTheClosedFormSum) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  for (size_t count : {size_t(1), size_t(1000), size_t(4099)}) {
    std::vector<T> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = T(r + 1) * T(i % 97 + 1);
    this->comm.all_reduce_sum(v.data(), count);
    for (size_t i = 0; i < count; ++i)
      ASSERT_EQ(v[i], T(n * (n + 1) / 2) * T(i % 97 + 1)) << "element " << i << " of " << count;
  }
}

TYPED_TEST(Collectives, AllReduceMaxIsTheMaximumOverRanks) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  const size_t count = 777;
  auto value = [](int rank, size_t i) { return T(int((size_t(rank) * 31 + i * 17) % 101) - 50) * T(0.5); };
  std::vector<T> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = value(r, i);
  this->comm.all_reduce_max(v.data(), count);
  for (size_t i = 0; i < count; ++i) {
    T expected = value(0, i);
    for (int q = 1; q < n; ++q) expected = std::max(expected, value(q, i));
    ASSERT_EQ(v[i], expected) << "element " << i;
  }
}

TYPED_TEST(Collectives, ReduceScatterGivesEachRankTheSumOfItsBlock) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  const size_t block = 333;
  std::vector<T> send(block * size_t(n)), recv(block, T(-1));
  // send[b][j] = rank + 1000 b + j: block r summed over ranks = n(n-1)/2 + n (1000 r + j).
  for (int b = 0; b < n; ++b)
    for (size_t j = 0; j < block; ++j) send[size_t(b) * block + j] = T(r) + T(1000 * b) + T(j);
  auto expected = [&](size_t j) { return T(n * (n - 1) / 2) + T(n) * (T(1000 * r) + T(j)); };
  this->comm.reduce_scatter_sum(send.data(), recv.data(), block);
  for (size_t j = 0; j < block; ++j) ASSERT_EQ(recv[j], expected(j)) << "element " << j;
  // In place: the result lands in this rank's block, the other blocks are left as they were.
  const std::vector<T> before = send;
  T* mine = send.data() + size_t(r) * block;
  this->comm.reduce_scatter_sum(send.data(), mine, block);
  for (size_t j = 0; j < block; ++j) ASSERT_EQ(mine[j], expected(j)) << "in place, element " << j;
  for (int b = 0; b < n; ++b)
    if (b != r)
      for (size_t j = 0; j < block; ++j) ASSERT_EQ(send[size_t(b) * block + j], before[size_t(b) * block + j]);
}

TYPED_TEST(Collectives, AsyncReduceScatterWithUnequalBlocksGivesEachRankTheSumOfItsBlock) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  // Blocks of 0, 5, 1000, 7, ... elements (some ranks receive nothing), the way a ZeRO-1 gradient bucket
  // meets the ranks' shards; two requests in flight at once.
  std::vector<int> counts(static_cast<size_t>(n));
  for (int b = 0; b < n; ++b) counts[size_t(b)] = b % 4 == 0 ? 0 : b % 4 == 1 ? 5 : b % 4 == 2 ? 1000 : 7;
  if (n == 1) counts[0] = 17;
  std::vector<size_t> starts(static_cast<size_t>(n) + 1, 0);
  for (int b = 0; b < n; ++b) starts[size_t(b) + 1] = starts[size_t(b)] + size_t(counts[size_t(b)]);
  // send[i] = rank + i / 4 (exact in float): rank r's element j sums to n(n-1)/2 + n (start_r + j) / 4.
  std::vector<T> send(starts.back() + 1), other(starts.back() + 1);
  for (size_t i = 0; i < send.size(); ++i) send[i] = T(r) + T(i) / T(4), other[i] = T(2 * r) - T(i);
  const size_t mine = size_t(counts[size_t(r)]);
  std::vector<T> recv(mine + 1, T(-1)), recv_other(mine + 1, T(-1));
  std::vector<Request> requests;
  requests.push_back(this->comm.reduce_scatter_sum_async(send.data(), recv.data(), counts.data()));
  requests.push_back(this->comm.reduce_scatter_sum_async(other.data(), recv_other.data(), counts.data()));
  this->comm.wait_all(requests);
  for (size_t j = 0; j < mine; ++j) {
    const size_t i = starts[size_t(r)] + j;
    ASSERT_EQ(recv[j], T(n * (n - 1) / 2) + T(n) * T(i) / T(4)) << "element " << j;
    ASSERT_EQ(recv_other[j], T(n * (n - 1)) - T(n) * T(i)) << "second request, element " << j;
  }
  EXPECT_EQ(recv[mine], T(-1)) << "wrote past this rank's block";
  std::vector<int> bad(static_cast<size_t>(n), 1);
  bad[0] = -1;
  EXPECT_THROW(this->comm.reduce_scatter_sum_async(send.data(), recv.data(), bad.data()), Error);
}

TYPED_TEST(Collectives, AllGatherConcatenatesInRankOrder) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  const size_t count = 257;
  std::vector<T> send(count), recv(count * size_t(n), T(-1));
  for (size_t j = 0; j < count; ++j) send[j] = T(r * 10000) + T(j);
  this->comm.all_gather(send.data(), recv.data(), count);
  for (int q = 0; q < n; ++q)
    for (size_t j = 0; j < count; ++j) ASSERT_EQ(recv[size_t(q) * count + j], T(q * 10000) + T(j)) << q << "," << j;
  // In place: this rank's block already sits in the receive buffer.
  std::vector<T> inplace(count * size_t(n), T(-1));
  std::copy(send.begin(), send.end(), inplace.begin() + std::ptrdiff_t(size_t(r) * count));
  this->comm.all_gather(inplace.data() + size_t(r) * count, inplace.data(), count);
  EXPECT_EQ(inplace, recv);
}

TYPED_TEST(Collectives, BroadcastFromEveryRoot) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  for (int root = 0; root < n; ++root) {
    std::vector<T> v(100, T(r == root ? root + 0.25 : -1));
    this->comm.broadcast(v.data(), v.size() * sizeof(T), root);
    for (T x : v) ASSERT_EQ(x, T(root + 0.25)) << "root " << root;
  }
}

TYPED_TEST(Collectives, SendRecvAroundTheRing) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  const size_t count = 5000;  // large enough that Open MPI does not send it eagerly
  std::vector<T> out(count), in(count, T(-1));
  for (size_t j = 0; j < count; ++j) out[j] = T(r) * T(100000) + T(j);
  auto check = [&](const char* how) {
    for (size_t j = 0; j < count; ++j) ASSERT_EQ(in[j], T(left) * T(100000) + T(j)) << how << ", element " << j;
  };
  if (n > 1) {  // blocking send to oneself would wait for a receive that never comes
    // Even ranks send first, odd ranks receive first: no cycle of waiting sends for an even n.
    ASSERT_EQ(n % 2, 0) << "the blocking ring needs an even number of ranks";
    if (r % 2 == 0) {
      this->comm.send(out.data(), count, right, 1);
      this->comm.recv(in.data(), count, left, 1);
    } else {
      this->comm.recv(in.data(), count, left, 1);
      this->comm.send(out.data(), count, right, 1);
    }
    check("send/recv");
  }
  std::fill(in.begin(), in.end(), T(-1));
  this->comm.sendrecv(out.data(), count, right, in.data(), count, left, 2);
  check("sendrecv");
  // Requests dropped at the end of a scope complete in their destructors.
  std::fill(in.begin(), in.end(), T(-1));
  {
    Request rr = this->comm.irecv(in.data(), count, left, 3);
    Request rs = this->comm.isend(out.data(), count, right, 3);
  }
  check("isend/irecv completed by destructors");
}

TYPED_TEST(Collectives, AsyncAllReduceOverlapsARingAndCompletes) {
  using T = TypeParam;
  const int r = this->r, n = this->n;
  const int right = (r + 1) % n, left = (r + n - 1) % n;
  const size_t count = 100000, ring = 3000;
  std::vector<T> grads(count), out(ring), in(ring, T(-1));
  for (size_t i = 0; i < count; ++i) grads[i] = T(r + 1) * T(i % 13);
  for (size_t j = 0; j < ring; ++j) out[j] = T(r) + T(j) * T(0.5);

  Request reduce = this->comm.all_reduce_sum_async(grads.data(), count);
  EXPECT_EQ(reduce.pending(), n > 1);
  std::vector<Request> p2p;
  p2p.push_back(this->comm.irecv(in.data(), ring, left, 4));
  p2p.push_back(this->comm.isend(out.data(), ring, right, 4));
  this->comm.wait_all(p2p);
  for (auto& q : p2p) EXPECT_FALSE(q.pending());
  for (size_t j = 0; j < ring; ++j) ASSERT_EQ(in[j], T(left) + T(j) * T(0.5)) << "ring element " << j;
  this->comm.wait(reduce);
  EXPECT_FALSE(reduce.pending());
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(grads[i], T(n * (n + 1) / 2) * T(i % 13)) << "element " << i;

  // test() progresses the operation and is eventually true (the ctest TIMEOUT catches a hang).
  for (size_t i = 0; i < count; ++i) grads[i] = T(r);
  Request again = this->comm.all_reduce_sum_async(grads.data(), count);
  Request moved = std::move(again);
  EXPECT_FALSE(again.pending());
  long polls = 0;
  while (!this->comm.test(moved)) ++polls;
  EXPECT_FALSE(moved.pending());
  EXPECT_TRUE(this->comm.test(moved));
  for (size_t i = 0; i < count; i += 997) ASSERT_EQ(grads[i], T(n * (n - 1) / 2)) << "after " << polls << " polls";
}

// ---- ProcessGrid over every (dp, tp, pp) with dp * tp * pp = world size.

std::vector<std::tuple<int, int, int>> factorisations(int world) {
  std::vector<std::tuple<int, int, int>> out;
  for (int dp = 1; dp <= world; ++dp)
    for (int tp = 1; dp * tp <= world; ++tp)
      if (world % (dp * tp) == 0) out.emplace_back(dp, tp, world / (dp * tp));
  return out;
}

// Sum over a group of the world ranks, from the layout alone.
double expected_group_sum(const GridLayout& g, GridCoord c, int GridCoord::*axis, int axis_size) {
  double sum = 0;
  for (int i = 0; i < axis_size; ++i) {
    GridCoord m = c;
    m.*axis = i;
    sum += g.rank_of(m);
  }
  return sum;
}

TEST(ProcessGrid, EveryFactorisationOfTheWorldGivesTheRightGroups) {
  const int world = world_size();
  int me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  for (auto [dp, tp, pp] : factorisations(world)) {
    SCOPED_TRACE(testing::Message() << "dp=" << dp << " tp=" << tp << " pp=" << pp);
    ProcessGrid grid(MPI_COMM_WORLD, ParallelConfig{dp, tp, pp});
    const GridLayout& g = grid.layout();
    const GridCoord c = grid.coord();
    ASSERT_EQ(g.rank_of(c), me);
    EXPECT_EQ(grid.world().size(), world);
    EXPECT_EQ(grid.world().rank(), me);
    EXPECT_EQ(grid.dp().size(), dp);
    EXPECT_EQ(grid.tp().size(), tp);
    EXPECT_EQ(grid.pp().size(), pp);
    EXPECT_EQ(grid.dp().rank(), c.dp);
    EXPECT_EQ(grid.tp().rank(), c.tp);
    EXPECT_EQ(grid.pp().rank(), c.pp);

    // The tp group is consecutive world ranks, in order.
    std::vector<double> members(size_t(tp), -1);
    const double mine = me;
    grid.tp().all_gather(&mine, members.data(), 1);
    for (int i = 0; i < tp; ++i) EXPECT_EQ(members[size_t(i)], double(me - c.tp + i)) << "tp member " << i;

    // An all_reduce of the world rank over each group gives that group's sum.
    double s = me;
    grid.dp().all_reduce_sum(&s, 1);
    EXPECT_EQ(s, expected_group_sum(g, c, &GridCoord::dp, dp)) << "dp group";
    s = me;
    grid.tp().all_reduce_sum(&s, 1);
    EXPECT_EQ(s, expected_group_sum(g, c, &GridCoord::tp, tp)) << "tp group";
    s = me;
    grid.pp().all_reduce_sum(&s, 1);
    EXPECT_EQ(s, expected_group_sum(g, c, &GridCoord::pp, pp)) << "pp group";
    float f = float(me);
    grid.world().all_reduce_sum(&f, 1);
    EXPECT_EQ(f, float(world * (world - 1) / 2)) << "world";
  }
}

TEST(ProcessGrid, DpMinusOneTakesTheRanksLeftOver) {
  const int world = world_size();
  for (int tp = 1; tp <= world; tp *= 2) {
    ProcessGrid grid(MPI_COMM_WORLD, ParallelConfig{-1, tp, 1});
    EXPECT_EQ(grid.layout().dp(), world / tp);
    EXPECT_EQ(grid.dp().size(), world / tp);
    EXPECT_EQ(grid.tp().size(), tp);
  }
}

TEST(ProcessGrid, AnInvalidLayoutThrowsOnEveryRank) {
  const int world = world_size();
  int thrown = 0;
  for (ParallelConfig bad : {ParallelConfig{2 * world, 1, 1}, ParallelConfig{1, world, 2}, ParallelConfig{-1, 3, 1},
                             ParallelConfig{0, 1, world}}) {
    try {
      ProcessGrid grid(MPI_COMM_WORLD, bad);
      ADD_FAILURE() << "accepted dp=" << bad.dp << " tp=" << bad.tp << " pp=" << bad.pp;
    } catch (const Error& e) {
      ++thrown;
      EXPECT_NE(std::string(e.what()).find("parallel"), std::string::npos) << e.what();
    }
  }
  // Every rank is still here and agrees.
  int total = 0;
  MPI_Allreduce(&thrown, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 4 * world);
}

}  // namespace
}  // namespace strata
