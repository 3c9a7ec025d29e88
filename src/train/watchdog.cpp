#include "train/watchdog.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "core/atomic_file.hpp"
#include "train/run_status.hpp"

namespace strata {
namespace {

constexpr const char* kPhaseNames[] = {"start",  "waiting for data", "forward/backward", "gradient reduction",
                                       "update", "evaluation",       "checkpoint",       "finishing"};
constexpr int kPhases = int(sizeof(kPhaseNames) / sizeof(kPhaseNames[0]));

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::pair<int64_t, int> progress(const Heartbeat& h) { return {h.step, int(h.phase)}; }

bool moved(const std::optional<Heartbeat>& before, const std::optional<Heartbeat>& after) {
  return after && (!before || after->counter != before->counter);
}

}  // namespace

const char* phase_name(Phase p) {
  const int i = int(p);
  return i >= 0 && i < kPhases ? kPhaseNames[i] : "?";
}

std::string heartbeat_path(const std::string& dir, int rank) {
  return (std::filesystem::path(dir) / fmt::format("rank-{:06d}.json", rank)).string();
}

std::string heartbeat_json(const Heartbeat& h) {
  return nlohmann::json{{"rank", h.who.rank},   {"host", h.who.host},    {"pid", h.who.pid},
                        {"dp", h.who.dp},       {"tp", h.who.tp},        {"pp", h.who.pp},
                        {"step", h.step},       {"phase", int(h.phase)}, {"phase_name", phase_name(h.phase)},
                        {"phase_s", h.phase_s}, {"counter", h.counter}}
      .dump();
}

std::optional<Heartbeat> parse_heartbeat(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    Heartbeat h;
    h.who = {j.at("rank").get<int>(), j.at("host").get<std::string>(), j.at("pid").get<int64_t>(),
             j.at("dp").get<int>(),   j.at("tp").get<int>(),           j.at("pp").get<int>()};
    h.step = j.at("step").get<int64_t>();
    const int phase = j.at("phase").get<int>();
    if (phase < 0 || phase >= kPhases) return std::nullopt;
    h.phase = Phase(phase);
    h.phase_s = j.at("phase_s").get<double>();
    h.counter = j.at("counter").get<int64_t>();
    return h;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::vector<Laggard> not_arrived(const std::vector<RankIdentity>& identities,
                                 const std::vector<std::optional<Heartbeat>>& before,
                                 const std::vector<std::optional<Heartbeat>>& after) {
  std::pair<int64_t, int> furthest{-1, -1};
  for (size_t r = 0; r < after.size(); ++r)
    if (moved(before[r], after[r])) furthest = std::max(furthest, progress(*after[r]));
  std::vector<Laggard> out;
  for (size_t r = 0; r < after.size(); ++r) {
    if (!after[r]) {
      Heartbeat who;
      who.who = r < identities.size() ? identities[r] : RankIdentity{int(r), "?", 0, 0, 0, 0};
      out.push_back({who, "no heartbeat file (is train.out_dir on a file system every node sees?)"});
    } else if (!moved(before[r], after[r])) {
      out.push_back({*after[r], fmt::format("its heartbeat stopped (the last: step {}, {}): the process is stopped, "
                                            "dead or its node unreachable",
                                            after[r]->step, phase_name(after[r]->phase))});
    } else if (progress(*after[r]) < furthest) {
      out.push_back({*after[r], fmt::format("alive, at step {} in {} for {:.1f} s while others reached step {} ({})",
                                            after[r]->step, phase_name(after[r]->phase), after[r]->phase_s,
                                            furthest.first, phase_name(Phase(furthest.second)))});
    }
  }
  return out;
}

int reporting_rank(const std::vector<std::optional<Heartbeat>>& before,
                   const std::vector<std::optional<Heartbeat>>& after, double timeout_s) {
  for (size_t r = 0; r < after.size(); ++r)
    if (moved(before[r], after[r]) && after[r]->phase_s >= timeout_s) return int(r);
  return -1;
}

Watchdog::Watchdog(double timeout_s, std::string dir, std::string status_path, std::vector<RankIdentity> identities,
                   int my_rank)
    : timeout_s_(timeout_s),
      period_s_(std::clamp(timeout_s / 10, 0.05, 5.0)),
      dir_(std::move(dir)),
      status_path_(std::move(status_path)),
      identities_(std::move(identities)),
      my_rank_(my_rank),
      beat_ns_(steady_ns()) {
  if (timeout_s_ <= 0) return;
  std::filesystem::create_directories(dir_);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::beat(int64_t step, Phase phase) {
  while (ended_.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::seconds(1));
  step_.store(step, std::memory_order_relaxed);
  phase_.store(int(phase), std::memory_order_relaxed);
  beat_ns_.store(steady_ns(), std::memory_order_release);
}

Heartbeat Watchdog::mine() const {
  Heartbeat h;
  h.who = identities_[size_t(my_rank_)];
  h.step = step_.load(std::memory_order_relaxed);
  h.phase = Phase(phase_.load(std::memory_order_relaxed));
  h.phase_s = double(steady_ns() - beat_ns_.load(std::memory_order_acquire)) / 1e9;
  h.counter = counter_;
  return h;
}

std::vector<std::optional<Heartbeat>> Watchdog::read_all() const {
  std::vector<std::optional<Heartbeat>> out;
  for (size_t r = 0; r < identities_.size(); ++r) {
    std::ifstream in(heartbeat_path(dir_, int(r)));
    std::stringstream text;
    text << in.rdbuf();
    out.push_back(in ? parse_heartbeat(text.str()) : std::nullopt);
  }
  return out;
}

void Watchdog::run() {
  const std::string path = heartbeat_path(dir_, my_rank_), tmp = path + ".tmp";
  bool warned = false;
  // Writes this rank's heartbeat (without fsync: it only has to be visible, not durable), then waits a period.
  // Returns false when the watchdog is stopping.
  auto heartbeat_then_wait = [&]() {
    ++counter_;
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << heartbeat_json(mine());
      out.close();
      std::error_code ec;
      if (out.good()) std::filesystem::rename(tmp, path, ec);
      if ((!out.good() || ec) && !warned) {
        std::fprintf(stderr, "strata: watchdog: cannot write the heartbeat '%s'; hangs go unreported\n", path.c_str());
        warned = true;
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    return !wake_.wait_for(lock, std::chrono::duration<double>(period_s_), [this] { return stop_; });
  };
  double stuck_since_s = -1;  // when this rank first saw the hang without being the one to report it
  int64_t last_wake_ns = steady_ns();
  // Whether this process itself was stopped (SIGSTOP, a suspended VM) since the last look: its time does not count,
  // and a process continued by the job's end must not report the ranks being killed as stopped.
  auto was_suspended = [&] {
    const int64_t now = steady_ns();
    const bool suspended = double(now - last_wake_ns) / 1e9 > 3 * period_s_ + 1.0;
    last_wake_ns = now;
    return suspended;
  };
  while (heartbeat_then_wait()) {
    if (was_suspended()) {
      beat_ns_.store(steady_ns(), std::memory_order_release);  // the clock starts again now
      stuck_since_s = -1;
      continue;
    }
    const Heartbeat me = mine();
    if (me.phase_s < timeout_s_) {
      stuck_since_s = -1;
      continue;
    }
    // Stuck: read every heartbeat, keep beating for three periods, read again; the counters that moved are alive.
    const int64_t beat_at = beat_ns_.load(std::memory_order_acquire);
    const auto before = read_all();
    for (int i = 0; i < 3; ++i)
      if (!heartbeat_then_wait()) return;
    if (was_suspended() || beat_ns_.load(std::memory_order_acquire) != beat_at) continue;  // it moved after all
    const auto after = read_all();
    const int reporter = reporting_rank(before, after, timeout_s_);
    const double now_s = double(steady_ns()) / 1e9;
    if (reporter != my_rank_) {
      // Another rank reports; should it fail to end the job within a timeout, this one does.
      if (stuck_since_s < 0) stuck_since_s = now_s;
      if (now_s - stuck_since_s < timeout_s_) continue;
    }
    report_and_end(not_arrived(identities_, before, after), mine());
  }
}

void Watchdog::report_and_end(const std::vector<Laggard>& laggards, const Heartbeat& me) {
  // Reported already by another rank (the job is ending): one report per hang.
  if (read_run_state(status_path_) == "hung") {
    ended_.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(timeout_s_));  // MPI_Abort ends this process meanwhile
    std::_Exit(kExitHung);
  }
  std::string text =
      fmt::format("strata: watchdog: {} has made no progress for {:.1f} s (watchdog.timeout_s = {}) at step {} ({})",
                  me.who.describe(), me.phase_s, timeout_s_, me.step, phase_name(me.phase));
  nlohmann::json missing = nlohmann::json::array();
  if (laggards.empty())
    text += "; every rank is alive and there: a collective or the file system hangs";
  else
    text += fmt::format("; {} rank(s) have not arrived:", laggards.size());
  text += "\n";
  for (const auto& l : laggards) {
    text += fmt::format("strata: watchdog:   {}: {}\n", l.last.who.describe(), l.why);
    missing.push_back({{"rank", l.last.who.rank},
                       {"host", l.last.who.host},
                       {"pid", l.last.who.pid},
                       {"dp", l.last.who.dp},
                       {"tp", l.last.who.tp},
                       {"pp", l.last.who.pp},
                       {"step", l.last.step},
                       {"phase", phase_name(l.last.phase)},
                       {"why", l.why}});
  }
  text +=
      fmt::format("strata: watchdog: ending the job with exit code {} (resume from the last checkpoint)\n", kExitHung);
  ended_.store(true, std::memory_order_release);  // this rank's training goes no further
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  try {
    write_file_atomically(status_path_, nlohmann::json{{"state", "hung"},
                                                       {"step", me.step},
                                                       {"phase", phase_name(me.phase)},
                                                       {"reported_by", me.who.rank},
                                                       {"timeout_s", timeout_s_},
                                                       {"not_arrived", missing}}
                                                .dump() +
                                            "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: watchdog: %s\n", e.what());
  }
  int provided = 0;
  if (MPI_Query_thread(&provided) == MPI_SUCCESS && provided == MPI_THREAD_MULTIPLE)
    MPI_Abort(MPI_COMM_WORLD, kExitHung);  // ends every rank, the stuck ones too
  std::_Exit(kExitHung);
}

}  // namespace strata
