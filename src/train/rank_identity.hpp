#pragma once
// Who a rank is, for the reports that name ranks (the hang watchdog, stragglers): world rank, host, process id and
// the dp/tp/pp coordinates.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct RankIdentity {
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  int dp = 0, tp = 0, pp = 0;
  // "rank 3 (host node17, dp 1, tp 0, pp 1)"
  std::string describe() const;
};

// This process's identity at coordinates (dp, tp, pp) of `world`.
RankIdentity my_identity(MPI_Comm world, int dp, int tp, int pp);

// Collective over `world`: every rank's identity, in rank order.
std::vector<RankIdentity> gather_identities(MPI_Comm world, const RankIdentity& mine);

}  // namespace strata
