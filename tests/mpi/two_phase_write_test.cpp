// core/two_phase_write at whatever world size the test runs at (ctest: np 1, 2, 4, 8). A file holding a sentinel
// pattern gets scattered byte ranges of every size and alignment from every rank, with gaps in between (standing in
// for HDF5 metadata between datasets); every covered byte must hold its value afterwards and every gap byte its
// sentinel, with O_DIRECT and through the page cache, over chunk sizes that make many rounds.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/two_phase_write.hpp"

namespace strata {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

char value_at(uint64_t offset) { return char((offset * 131 + 7) % 251); }
char sentinel_at(uint64_t offset) { return char(0xA5 ^ (offset % 7)); }

// Deterministic pseudo-random numbers, the same on every rank.
struct Lcg {
  uint64_t s;
  uint64_t next(uint64_t bound) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (s >> 33) % bound;
  }
};

struct Range {
  uint64_t offset, bytes;
  int holder;
};

// Ranges of every kind: tiny and unaligned, page-sized, several MiB; gaps of 0 to a few KiB between them; holders
// chosen at random, so owners receive from many ranks in one chunk.
std::vector<Range> layout(uint64_t seed, int ranks, uint64_t* file_size) {
  Lcg rng{seed};
  std::vector<Range> out;
  uint64_t at = rng.next(5000);
  for (int i = 0; i < 300; ++i) {
    const uint64_t kind = rng.next(10);
    const uint64_t bytes = kind < 5 ? 1 + rng.next(3000) : kind < 8 ? 4096 * (1 + rng.next(4)) : 1 + rng.next(3 << 20);
    out.push_back({at, bytes, int(rng.next(uint64_t(ranks)))});
    at += bytes + (rng.next(3) == 0 ? 0 : rng.next(6000));
  }
  *file_size = at + 777;
  return out;
}

std::string shared_temp_dir() {
  std::string dir;
  if (world_rank() == 0) {
    char tmpl[] = "/tmp/strata-two-phase-XXXXXX";
    STRATA_CHECK(::mkdtemp(tmpl) != nullptr, "mkdtemp failed");
    dir = tmpl;
  }
  int n = int(dir.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(size_t(n));
  MPI_Bcast(dir.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return dir;
}

class TwoPhaseWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = shared_temp_dir();
    path = dir + "/file.bin";
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(dir);
  }

  // Rank 0 writes the sentinel file; everyone waits for it.
  void write_sentinel_file(uint64_t size) {
    if (world_rank() == 0) {
      std::vector<char> bytes(size);
      for (uint64_t i = 0; i < size; ++i) bytes[i] = sentinel_at(i);
      std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(size));
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }

  std::vector<char> read_file() {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  }

  std::string dir, path;
};

TEST_F(TwoPhaseWrite, EveryCoveredByteHoldsItsValueAndEveryGapItsSentinel) {
  const int rank = world_rank(), size = world_size();
  for (bool direct : {true, false}) {
    for (uint64_t chunk : {uint64_t(64) << 10, uint64_t(1) << 20, uint64_t(16) << 20}) {
      SCOPED_TRACE(testing::Message() << "direct " << direct << ", chunk " << chunk);
      uint64_t file_size = 0;
      const auto ranges = layout(chunk + (direct ? 1 : 2), size, &file_size);
      write_sentinel_file(file_size);
      // This rank's ranges, each split in two segments from separate buffers (memory not contiguous).
      std::vector<std::vector<char>> buffers;
      std::vector<FileSegment> segments;
      uint64_t covered = 0;
      for (const Range& r : ranges) {
        covered += r.bytes;
        if (r.holder != rank) continue;
        const uint64_t half = r.bytes / 2;
        for (auto [o, n] : {std::pair{r.offset, half}, std::pair{r.offset + half, r.bytes - half}}) {
          std::vector<char> b(n);
          for (uint64_t i = 0; i < n; ++i) b[i] = value_at(o + i);
          buffers.push_back(std::move(b));
          segments.push_back({o, buffers.back().data(), n});
        }
      }
      TwoPhaseOptions options;
      options.chunk_bytes = chunk;
      options.direct = direct;
      int64_t hooks = 0, last_round = -1;
      options.after_round = [&](int64_t round, int64_t rounds) {
        EXPECT_EQ(round, last_round + 1);
        EXPECT_LT(round, rounds);
        last_round = round;
        ++hooks;
      };
      const TwoPhaseStats stats = two_phase_write(path, segments, MPI_COMM_WORLD, options);
      EXPECT_EQ(hooks, stats.rounds);
      if (direct) EXPECT_TRUE(stats.direct || !stats.direct_unavailable.empty()) << "no reason given for no O_DIRECT";
      if (!direct) EXPECT_FALSE(stats.direct);
      int64_t written = stats.bytes_written;
      MPI_Allreduce(MPI_IN_PLACE, &written, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
      EXPECT_EQ(uint64_t(written), covered) << "the owners together wrote each covered byte once";
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == 0) {
        const std::vector<char> bytes = read_file();
        ASSERT_EQ(bytes.size(), file_size);
        std::vector<char> is_covered(file_size, 0);
        for (const Range& r : ranges) std::fill_n(is_covered.begin() + long(r.offset), r.bytes, 1);
        uint64_t bad = 0, first_bad = 0;
        for (uint64_t i = 0; i < file_size; ++i) {
          const char expected = is_covered[i] ? value_at(i) : sentinel_at(i);
          if (bytes[i] != expected && bad++ == 0) first_bad = i;
        }
        EXPECT_EQ(bad, 0u) << "first wrong byte at offset " << first_bad
                           << (is_covered[first_bad] ? " (data)" : " (gap)");
      }
      MPI_Barrier(MPI_COMM_WORLD);
    }
  }
}

TEST_F(TwoPhaseWrite, RanksWithNothingToWriteTakePart) {
  const int rank = world_rank();
  write_sentinel_file(100000);
  std::vector<char> data(70000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = value_at(1000 + i);
  std::vector<FileSegment> segments;
  if (rank == 0) segments.push_back({1000, data.data(), data.size()});
  TwoPhaseOptions options;
  options.chunk_bytes = 8192;
  two_phase_write(path, segments, MPI_COMM_WORLD, options);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    const auto bytes = read_file();
    for (uint64_t i = 0; i < bytes.size(); ++i)
      ASSERT_EQ(bytes[i], i >= 1000 && i < 71000 ? value_at(i) : sentinel_at(i)) << "offset " << i;
  }
  // Nobody holding anything is a no-op.
  EXPECT_EQ(two_phase_write(path, {}, MPI_COMM_WORLD, options).rounds, 0);
}

TEST_F(TwoPhaseWrite, OverlappingSegmentsThrowOnEveryRank) {
  const int rank = world_rank(), size = world_size();
  write_sentinel_file(50000);
  std::vector<char> data(20000, 'x');
  // Every rank writes [10000, 30000) when alone; with more ranks, rank r writes [10000 + 5000 r, +20000): overlaps.
  std::vector<FileSegment> segments = {{uint64_t(10000 + 5000 * rank), data.data(), data.size()}};
  if (size == 1) segments.push_back({25000, data.data(), 100});
  TwoPhaseOptions options;
  options.chunk_bytes = 1 << 20;
  EXPECT_THROW(two_phase_write(path, segments, MPI_COMM_WORLD, options), Error);
}

TEST_F(TwoPhaseWrite, AMissingFileIsAnErrorOnEveryRankNamingIt) {
  std::vector<char> data(100, 'x');
  std::vector<FileSegment> segments = {{uint64_t(world_rank()) * 100, data.data(), data.size()}};
  try {
    two_phase_write(dir + "/missing.bin", segments, MPI_COMM_WORLD);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace strata
