#pragma once
// Two-phase collective writes of scattered byte segments into one existing file: the checkpoint writer's data path
// (DESIGN.md principle 10). The file is cut into chunks owned round-robin by the ranks. In each round every rank
// sends each owner the bytes it holds for the owner's chunk (MPI_Alltoallv); the owner assembles the chunk in an
// aligned staging buffer and writes it with O_DIRECT, straight from that buffer to the device, while the next
// round is exchanged. Why: a page-cache write of a 1.5 GB checkpoint spends most of its time copying into freshly
// allocated cache pages (perf/RESULTS.md, issue 5); direct writes from one reused buffer run at the disk's rate.
// Bytes at the unaligned edges of a contiguous run go through the page cache as exact ranges, so bytes of the
// file that no segment covers (HDF5 metadata between datasets) are never touched.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace strata {

// Offsets, lengths and buffer addresses of direct writes are multiples of this (the page size; no common device
// has a larger logical block).
inline constexpr uint64_t kDirectAlignment = 4096;

struct FileSegment {
  uint64_t offset = 0;  // where the bytes go in the file
  const void* data = nullptr;
  uint64_t bytes = 0;
};

struct TwoPhaseOptions {
  uint64_t chunk_bytes = uint64_t(16) << 20;  // a multiple of kDirectAlignment; two staging buffers of it per rank
  bool direct = true;                         // O_DIRECT where the file system accepts it, else the page cache
  // Called on every rank after each round (with the round and the number of rounds): crash-test hooks.
  std::function<void(int64_t round, int64_t rounds)> after_round;
};

struct TwoPhaseStats {
  bool direct = false;             // this rank wrote its aligned runs with O_DIRECT
  std::string direct_unavailable;  // why not, when direct writes were asked for and refused by the file system
  int64_t rounds = 0;
  int64_t bytes_written = 0;      // by this rank, as the owner of its chunks
  double exchange_seconds = 0;    // packing, MPI_Alltoallv and assembling the staging buffers
  double write_wait_seconds = 0;  // waiting for this rank's writes not hidden behind the next exchange
  double sync_seconds = 0;        // fsync
};

// Collective over `comm`: writes every rank's `segments` into the existing file `path`, then fsyncs it on every
// rank. Segments of all ranks together must not overlap (checked: an overlap throws). Every rank throws if any
// rank's write fails, naming the failing rank, so no rank is left waiting in a collective.
TwoPhaseStats two_phase_write(const std::string& path, std::vector<FileSegment> segments, MPI_Comm comm,
                              const TwoPhaseOptions& options = {});

}  // namespace strata
