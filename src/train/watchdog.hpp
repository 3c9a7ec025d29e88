#pragma once
// The hang watchdog (docs/monitoring.md). The main thread marks where it is (beat: step and phase); a thread per rank
// writes that, with a counter of its own, to <out_dir>/heartbeat/rank-NNNNNN.json every period (a tenth of the
// timeout, at most 5 s). When its main thread has not moved for watchdog.timeout_s, the thread reads every rank's
// heartbeat twice, a few periods apart: a rank whose counter did not move is stopped or dead (or its node is gone);
// a live rank behind the furthest point the stuck ranks reached has not arrived there. The lowest live stuck rank
// reports those ranks (rank, host, dp/tp/pp) on stderr and in <out_dir>/status.json ("state": "hung") and ends the
// job with MPI_Abort(kExitHung), which jobs/train.sbatch treats like a preemption (requeue, resume from the last
// checkpoint). Files rather than messages: a stuck rank's MPI cannot be relied on, and a stopped one answers nothing.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "train/rank_identity.hpp"

namespace strata {

// The job ended because the watchdog found a hang: resumable from the last checkpoint, like kExitResumable.
inline constexpr int kExitHung = 76;

// Where the main thread is, in step order (a rank further along has passed the earlier phases of that step).
enum class Phase { Start, Data, Compute, Reduce, Update, Evaluate, Checkpoint, Finish };
const char* phase_name(Phase p);  // "waiting for data", "forward/backward", "gradient reduction", ...

struct Heartbeat {
  RankIdentity who;
  int64_t step = 0;  // the step it runs (1-based; 0 before the first)
  Phase phase = Phase::Start;
  double phase_s = 0;   // seconds since its main thread's last beat
  int64_t counter = 0;  // heartbeats its watchdog thread has written: moves while the process lives
};
std::string heartbeat_json(const Heartbeat& h);
std::optional<Heartbeat> parse_heartbeat(const std::string& text);  // nullopt: not a heartbeat (torn, empty)

struct Laggard {
  Heartbeat last;   // its last heartbeat (who only, when it has none)
  std::string why;  // "its heartbeat stopped at step 37 (forward/backward): ..." / "alive, at step 37 in ..."
};

// The diagnosis of a hang from every rank's heartbeat read twice (`before`, then `after` a few periods later; nullopt:
// no file): the ranks whose heartbeat stopped, and the live ranks behind the furthest (step, phase) any live rank
// reached. Empty when every rank is alive at that point (a collective or the file system hangs). `identities` names
// ranks without a heartbeat file.
std::vector<Laggard> not_arrived(const std::vector<RankIdentity>& identities,
                                 const std::vector<std::optional<Heartbeat>>& before,
                                 const std::vector<std::optional<Heartbeat>>& after);
// The rank that reports: the lowest whose heartbeat moved between the reads and which is stuck itself (its phase
// older than timeout_s); -1 when there is none.
int reporting_rank(const std::vector<std::optional<Heartbeat>>& before,
                   const std::vector<std::optional<Heartbeat>>& after, double timeout_s);

class Watchdog {
 public:
  // timeout_s <= 0: off (no thread, no files). dir: the heartbeat directory (emptied by the caller beforehand, on one
  // rank, before a barrier); status_path: the status file a report writes; identities: every rank's, in rank order.
  Watchdog(double timeout_s, std::string dir, std::string status_path, std::vector<RankIdentity> identities,
           int my_rank);
  ~Watchdog();  // stops the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Main thread: now running `step` (1-based), in `phase`. Once this rank has reported a hang (or seen another's
  // report), it parks here instead: while MPI_Abort ends the job the stopped rank may be continued, and the ranks
  // must not train on (and checkpoint past the reported step) meanwhile.
  void beat(int64_t step, Phase phase);
  bool on() const { return timeout_s_ > 0; }

 private:
  void run();
  Heartbeat mine() const;
  std::vector<std::optional<Heartbeat>> read_all() const;
  [[noreturn]] void report_and_end(const std::vector<Laggard>& laggards, const Heartbeat& me);

  double timeout_s_, period_s_;
  std::string dir_, status_path_;
  std::vector<RankIdentity> identities_;
  int my_rank_;
  std::atomic<int64_t> step_{0};
  std::atomic<int> phase_{int(Phase::Start)};
  std::atomic<int64_t> beat_ns_;    // steady clock of the last beat
  std::atomic<bool> ended_{false};  // a hang was reported: the job is ending
  int64_t counter_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// The heartbeat file of `rank` in `dir`.
std::string heartbeat_path(const std::string& dir, int rank);

}  // namespace strata
