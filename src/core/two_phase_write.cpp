#include "core/two_phase_write.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>

#include "core/error.hpp"
#include "core/stopwatch.hpp"

namespace strata {
namespace {

uint64_t round_down(uint64_t x) { return x / kDirectAlignment * kDirectAlignment; }
uint64_t round_up(uint64_t x) { return round_down(x + kDirectAlignment - 1); }

struct AlignedBuffer {
  explicit AlignedBuffer(uint64_t bytes) : data(static_cast<char*>(std::aligned_alloc(kDirectAlignment, bytes))) {
    STRATA_CHECK(data != nullptr, "cannot allocate a {} MiB staging buffer for checkpoint writes", bytes >> 20);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data;
};

struct FileDescriptor {
  int fd = -1;
  FileDescriptor() = default;
  explicit FileDescriptor(int f) : fd(f) {}
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
};

struct MaxLoc {  // MPI_2INT
  int bytes;
  int rank;
};

// A byte range of the file and, while packing, where this rank holds it.
struct Piece {
  uint64_t offset = 0, bytes = 0;
  const char* source = nullptr;
};

// What the owner of a chunk writes: the chunk's pieces merged into contiguous runs, from its staging buffer.
class ChunkWriter {
 public:
  ChunkWriter(std::string path, int buffered_fd, int direct_fd)
      : path_(std::move(path)), buffered_fd_(buffered_fd), direct_fd_(direct_fd) {}

  // staging[0] holds file offset chunk_start; runs are sorted, disjoint, inside the chunk.
  void write(const char* staging, uint64_t chunk_start, const std::vector<Piece>& runs) {
    for (const Piece& run : runs) {
      const uint64_t a = run.offset, b = run.offset + run.bytes;
      const uint64_t A = round_up(a), B = round_down(b);
      const char* at = staging + (a - chunk_start);
      if (direct_fd_ < 0 || A >= B) {
        write_exact(buffered_fd_, at, b - a, a);
      } else {
        // The aligned middle goes straight to the device; the partial pages at either end through the page
        // cache, so pages holding bytes of no run keep their contents.
        if (a < A) write_exact(buffered_fd_, at, A - a, a);
        write_direct(staging + (A - chunk_start), B - A, A);
        if (B < b) write_exact(buffered_fd_, staging + (B - chunk_start), b - B, B);
      }
      bytes_written += int64_t(b - a);
    }
  }

  bool direct() const { return direct_fd_ >= 0; }
  int64_t bytes_written = 0;
  std::string direct_unavailable;

 private:
  void write_exact(int fd, const char* data, uint64_t bytes, uint64_t offset) {
    while (bytes > 0) {
      const ssize_t n = ::pwrite(fd, data, bytes, off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      STRATA_CHECK(n > 0, "'{}': write of {} bytes at offset {} failed: {}", path_, bytes, offset,
                   n < 0 ? std::strerror(errno) : "no progress");
      data += n;
      bytes -= uint64_t(n);
      offset += uint64_t(n);
    }
  }

  void write_direct(const char* data, uint64_t bytes, uint64_t offset) {
    // A short direct write leaves an aligned remainder only when the device stopped at a block boundary; anything
    // else continues through the page cache, which takes any alignment.
    while (bytes > 0 && direct_fd_ >= 0) {
      const ssize_t n = ::pwrite(direct_fd_, data, bytes, off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL) {
        // The file system opened with O_DIRECT but wants another alignment: the page cache for the rest.
        direct_unavailable = fmt::format("O_DIRECT write refused ({})", std::strerror(errno));
        direct_fd_ = -1;
        break;
      }
      STRATA_CHECK(n > 0, "'{}': direct write of {} bytes at offset {} failed: {}", path_, bytes, offset,
                   n < 0 ? std::strerror(errno) : "no progress");
      data += n;
      bytes -= uint64_t(n);
      offset += uint64_t(n);
      if (bytes % kDirectAlignment != 0 || offset % kDirectAlignment != 0) break;
    }
    write_exact(buffered_fd_, data, bytes, offset);
  }

  std::string path_;
  int buffered_fd_, direct_fd_;
};

// Sorted, empty ones dropped, neighbours contiguous in the file and in memory merged.
std::vector<FileSegment> normalized(std::vector<FileSegment> segments) {
  segments.erase(std::remove_if(segments.begin(), segments.end(), [](const FileSegment& s) { return s.bytes == 0; }),
                 segments.end());
  std::sort(segments.begin(), segments.end(),
            [](const FileSegment& x, const FileSegment& y) { return x.offset < y.offset; });
  std::vector<FileSegment> out;
  for (const FileSegment& s : segments) {
    if (!out.empty()) {
      FileSegment& last = out.back();
      if (last.offset + last.bytes == s.offset && static_cast<const char*>(last.data) + last.bytes == s.data) {
        last.bytes += s.bytes;
        continue;
      }
    }
    out.push_back(s);
  }
  return out;
}

// Every rank learns whether any rank failed (the lowest failing rank) and throws if one did.
void agree_or_throw(const std::string& local_error, int rank, int size, MPI_Comm comm, const std::string& path) {
  int failing = local_error.empty() ? size : rank, first = size;
  STRATA_MPI(MPI_Allreduce(&failing, &first, 1, MPI_INT, MPI_MIN, comm));
  if (first == size) return;
  if (!local_error.empty()) STRATA_FAIL("{}", local_error);
  STRATA_FAIL("'{}': rank {} failed writing its part; this rank stopped with it", path, first);
}

std::string error_text(std::future<void>& pending) {
  if (!pending.valid()) return "";
  try {
    pending.get();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TwoPhaseStats two_phase_write(const std::string& path, std::vector<FileSegment> segments, MPI_Comm comm,
                              const TwoPhaseOptions& options) {
  int rank = 0, size = 1;
  STRATA_MPI(MPI_Comm_rank(comm, &rank));
  STRATA_MPI(MPI_Comm_size(comm, &size));
  const uint64_t chunk = options.chunk_bytes;
  STRATA_CHECK(chunk > 0 && chunk % kDirectAlignment == 0 && chunk + 4096 < uint64_t(INT_MAX) / 2,
               "two-phase write: chunk of {} bytes is not a positive multiple of {} below 1 GiB", chunk,
               kDirectAlignment);
  segments = normalized(std::move(segments));
  TwoPhaseStats stats;

  uint64_t span[2] = {UINT64_MAX, 0};  // {lowest offset, -(highest end)} for one MIN reduction
  for (const FileSegment& s : segments) {
    span[0] = std::min(span[0], s.offset);
    span[1] = std::max(span[1], s.offset + s.bytes);
  }
  span[1] = UINT64_MAX - span[1];
  STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, span, 2, MPI_UINT64_T, MPI_MIN, comm));
  const uint64_t lo = span[0], hi = UINT64_MAX - span[1];
  if (lo >= hi) return stats;  // nothing to write on any rank
  const uint64_t first_chunk = lo / chunk, chunks = (hi - 1) / chunk - first_chunk + 1;

  // This rank's bytes split at chunk boundaries, by chunk.
  std::map<uint64_t, std::vector<Piece>> mine;
  std::vector<MaxLoc> held(chunks, MaxLoc{0, rank});
  for (const FileSegment& s : segments) {
    for (uint64_t at = s.offset; at < s.offset + s.bytes;) {
      const uint64_t k = at / chunk, end = std::min(s.offset + s.bytes, (k + 1) * chunk);
      mine[k].push_back({at, end - at, static_cast<const char*>(s.data) + (at - s.offset)});
      held[k - first_chunk].bytes += int(end - at);
      at = end;
    }
  }
  // Owners: the rank holding most of a chunk's bytes (no exchange for it), as long as that rank owns no more than
  // its share of the chunks; else the rank owning the fewest. Every rank computes the same table.
  STRATA_MPI(MPI_Allreduce(MPI_IN_PLACE, held.data(), int(chunks), MPI_2INT, MPI_MAXLOC, comm));
  uint64_t nonempty = 0;
  for (const MaxLoc& h : held) nonempty += h.bytes > 0;
  const uint64_t share = (nonempty + uint64_t(size) - 1) / uint64_t(size);
  std::vector<std::vector<uint64_t>> owned(static_cast<size_t>(size));  // per rank: its chunks, ascending
  for (uint64_t c = 0; c < chunks; ++c) {
    if (held[c].bytes == 0) continue;
    size_t owner = size_t(held[c].rank);
    if (owned[owner].size() >= share)
      owner = size_t(std::min_element(owned.begin(), owned.end(),
                                      [](const auto& x, const auto& y) { return x.size() < y.size(); }) -
                     owned.begin());
    owned[owner].push_back(first_chunk + c);
  }
  for (const auto& o : owned) stats.rounds = std::max(stats.rounds, int64_t(o.size()));

  std::string local_error;
  FileDescriptor buffered(::open(path.c_str(), O_WRONLY | O_CLOEXEC)), direct;
  if (buffered.fd < 0) local_error = fmt::format("'{}': cannot open for writing: {}", path, std::strerror(errno));
  if (options.direct && local_error.empty()) {
    direct.fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT);
    if (direct.fd < 0) stats.direct_unavailable = fmt::format("open with O_DIRECT: {}", std::strerror(errno));
  }
  agree_or_throw(local_error, rank, size, comm, path);
  ChunkWriter writer(path, buffered.fd, direct.fd);

  AlignedBuffer staging[2] = {AlignedBuffer(chunk), AlignedBuffer(chunk)};
  const auto rank_count = static_cast<size_t>(size);
  std::vector<std::vector<Piece>> outgoing(rank_count);
  std::vector<char> send, receive;
  std::vector<int> send_counts(rank_count), receive_counts(rank_count), send_displs(rank_count),
      receive_displs(rank_count);
  std::future<void> pending;  // the previous round's write

  for (int64_t round = 0; round < stats.rounds; ++round) {
    const auto exchange_start = Clock::now();
    // This round: each rank's next owned chunk, and what this rank holds of it.
    for (int q = 0; q < size; ++q) {
      auto& pieces = outgoing[size_t(q)];
      pieces.clear();
      const auto& theirs = owned[size_t(q)];
      if (size_t(round) >= theirs.size()) continue;
      auto it = mine.find(theirs[size_t(round)]);
      if (it != mine.end()) pieces.swap(it->second);
    }
    char* const stage = staging[round % 2].data;
    const bool writing = size_t(round) < owned[size_t(rank)].size();
    const uint64_t chunk_start = writing ? owned[size_t(rank)][size_t(round)] * chunk : 0;
    std::vector<Piece> received;
    auto place = [&](uint64_t offset, uint64_t bytes, const char* from) {
      std::memcpy(stage + (offset - chunk_start), from, bytes);
      received.push_back({offset, bytes, nullptr});
    };
    for (const Piece& p : outgoing[size_t(rank)]) place(p.offset, p.bytes, p.source);
    if (size > 1) {
      // Each message: piece count, then (offset, bytes) per piece, then the bytes.
      size_t total = 0;
      for (int q = 0; q < size; ++q) {
        const auto& pieces = outgoing[size_t(q)];
        uint64_t bytes = 0;
        for (const Piece& p : pieces) bytes += p.bytes;
        const uint64_t message = q == rank ? 0 : 8 + 16 * pieces.size() + bytes;
        STRATA_CHECK(message < uint64_t(INT_MAX), "two-phase write: a {}-byte message is too large", message);
        send_counts[size_t(q)] = int(message);
        send_displs[size_t(q)] = int(total);
        total += message;
      }
      STRATA_CHECK(total < uint64_t(INT_MAX), "two-phase write: {} bytes to send in one round", total);
      send.resize(total);
      for (int q = 0; q < size; ++q) {
        if (q == rank) continue;
        char* out = send.data() + send_displs[size_t(q)];
        const auto& pieces = outgoing[size_t(q)];
        const uint64_t count = pieces.size();
        std::memcpy(out, &count, 8);
        out += 8;
        for (const Piece& p : pieces) {
          std::memcpy(out, &p.offset, 8);
          std::memcpy(out + 8, &p.bytes, 8);
          out += 16;
        }
        for (const Piece& p : pieces) {
          std::memcpy(out, p.source, p.bytes);
          out += p.bytes;
        }
      }
      STRATA_MPI(MPI_Alltoall(send_counts.data(), 1, MPI_INT, receive_counts.data(), 1, MPI_INT, comm));
      size_t received_total = 0;
      for (int q = 0; q < size; ++q) {
        receive_displs[size_t(q)] = int(received_total);
        received_total += size_t(receive_counts[size_t(q)]);
      }
      STRATA_CHECK(received_total < uint64_t(INT_MAX), "two-phase write: {} bytes to receive in one round",
                   received_total);
      receive.resize(received_total);
      STRATA_MPI(MPI_Alltoallv(send.data(), send_counts.data(), send_displs.data(), MPI_BYTE, receive.data(),
                               receive_counts.data(), receive_displs.data(), MPI_BYTE, comm));
      for (int q = 0; q < size; ++q) {
        if (receive_counts[size_t(q)] == 0) continue;
        const char* in = receive.data() + receive_displs[size_t(q)];
        uint64_t count = 0;
        std::memcpy(&count, in, 8);
        const char* data = in + 8 + 16 * count;
        for (uint64_t i = 0; i < count; ++i) {
          uint64_t offset = 0, bytes = 0;
          std::memcpy(&offset, in + 8 + 16 * i, 8);
          std::memcpy(&bytes, in + 16 + 16 * i, 8);
          if (offset < chunk_start || offset + bytes > chunk_start + chunk) {
            local_error = fmt::format("'{}': rank {} sent bytes [{}, {}) for chunk [{}, {})", path, q, offset,
                                      offset + bytes, chunk_start, chunk_start + chunk);
            break;
          }
          place(offset, bytes, data);
          data += bytes;
        }
      }
    }
    // Runs: the received pieces sorted and merged; two ranks holding the same byte is a caller's bug.
    std::sort(received.begin(), received.end(), [](const Piece& x, const Piece& y) { return x.offset < y.offset; });
    std::vector<Piece> runs;
    for (const Piece& p : received) {
      if (!runs.empty() && p.offset < runs.back().offset + runs.back().bytes && local_error.empty())
        local_error = fmt::format("'{}': two segments hold file offset {} (segments must not overlap)", path, p.offset);
      if (!runs.empty() && runs.back().offset + runs.back().bytes == p.offset)
        runs.back().bytes += p.bytes;
      else
        runs.push_back(p);
    }
    stats.exchange_seconds += seconds_since(exchange_start);

    const auto wait_start = Clock::now();
    const std::string write_error = error_text(pending);
    stats.write_wait_seconds += seconds_since(wait_start);
    if (local_error.empty()) local_error = write_error;
    agree_or_throw(local_error, rank, size, comm, path);
    if (!runs.empty())
      pending = std::async(std::launch::async, [&writer, stage, chunk_start, runs = std::move(runs)] {
        writer.write(stage, chunk_start, runs);
      });
    if (options.after_round) options.after_round(round, stats.rounds);
  }
  const auto wait_start = Clock::now();
  local_error = error_text(pending);
  stats.write_wait_seconds += seconds_since(wait_start);
  agree_or_throw(local_error, rank, size, comm, path);

  const auto sync_start = Clock::now();
  if (::fsync(buffered.fd) != 0) local_error = fmt::format("'{}': fsync failed: {}", path, std::strerror(errno));
  stats.sync_seconds = seconds_since(sync_start);
  agree_or_throw(local_error, rank, size, comm, path);
  stats.direct = writer.direct();
  if (!writer.direct_unavailable.empty()) stats.direct_unavailable = writer.direct_unavailable;
  stats.bytes_written = writer.bytes_written;
  return stats;
}

}  // namespace strata
