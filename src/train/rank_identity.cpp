#include "train/rank_identity.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "core/error.hpp"

namespace strata {

std::string RankIdentity::describe() const {
  return fmt::format("rank {} (host {}, dp {}, tp {}, pp {})", rank, host, dp, tp, pp);
}

RankIdentity my_identity(MPI_Comm world, int dp, int tp, int pp) {
  RankIdentity me;
  STRATA_MPI(MPI_Comm_rank(world, &me.rank));
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  me.host = host;
  me.pid = int64_t(::getpid());
  me.dp = dp;
  me.tp = tp;
  me.pp = pp;
  return me;
}

std::vector<RankIdentity> gather_identities(MPI_Comm world, const RankIdentity& mine) {
  constexpr size_t kHost = 64;  // host names are cut to this many bytes
  struct Packed {
    int64_t pid;
    int32_t rank, dp, tp, pp;
    std::array<char, kHost> host;
  };
  Packed packed{mine.pid, mine.rank, mine.dp, mine.tp, mine.pp, {}};
  std::strncpy(packed.host.data(), mine.host.c_str(), kHost - 1);
  int size = 0;
  STRATA_MPI(MPI_Comm_size(world, &size));
  std::vector<Packed> all(static_cast<size_t>(size));
  STRATA_MPI(MPI_Allgather(&packed, int(sizeof(Packed)), MPI_BYTE, all.data(), int(sizeof(Packed)), MPI_BYTE, world));
  std::vector<RankIdentity> out;
  for (const auto& p : all) out.push_back({p.rank, std::string(p.host.data()), p.pid, p.dp, p.tp, p.pp});
  return out;
}

}  // namespace strata
