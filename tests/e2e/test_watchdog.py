#!/usr/bin/python3
"""The hang watchdog and the straggler report (src/train/watchdog.hpp, straggler_report.hpp) end to end:

- one rank of a 2-rank pipeline stopped with SIGSTOP mid-run: the other names it (rank, host, dp/tp/pp) on stderr and
  in status.json ("hung"), the job ends with exit code 76, and `--resume auto` continues from the last checkpoint to
  the end, every step once;
- a rank slowed down by the debug switch (STRATA_DEBUG_INJECT=slow:...) is named as a straggler every
  watchdog.straggler_every steps, and rank_times.jsonl has every rank's compute time;
- bad watchdog settings are one line.

Run: /usr/bin/python3 tests/e2e/test_watchdog.py [-v]
"""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from test_cli import STRATA, StrataTestCase, read_metrics, text_dataset, write_config
from test_datasets import MPIEXEC, MPI_ENV, run_ranks

GPT = {"model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
       "train.batch_size": 8, "train.eval_batches": 1, "train.log_every": 1000, "train.tensorboard": False}
HUNG = 76


class WatchdogTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        self.data = text_dataset(self.tmp)

    def config(self, name, values):
        return write_config(self.tmp / f"{name}.toml", dict(GPT, **values, **{"data.path": self.data,
                                                                             "train.out_dir": str(self.tmp / name)}))

    def test_a_stopped_rank_is_named_and_the_job_ends_resumable(self):
        out = self.tmp / "hang"
        values = {"parallel.pp": 2, "train.micro_batch_size": 4, "train.steps": 100000, "checkpoint.every": 50,
                  "watchdog.timeout_s": 2}
        cfg = self.config("hang", values)
        proc = subprocess.Popen([MPIEXEC, "--oversubscribe", "-np", "2", STRATA, "train", "--config", cfg],
                                env=MPI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")
        stopped = None
        try:
            beat = out / "heartbeat" / "rank-000001.json"
            deadline = time.time() + 120
            while time.time() < deadline:  # a checkpoint exists and rank 1 is well into training
                if beat.exists() and (out / "checkpoints" / "latest").exists():
                    try:
                        info = json.loads(beat.read_text())
                    except ValueError:
                        continue
                    if info["step"] > 60:
                        break
                time.sleep(0.1)
            stopped = info["pid"]
            os.kill(stopped, signal.SIGSTOP)
            stopped_at = time.time()
            stdout, stderr = proc.communicate(timeout=120)
            took = time.time() - stopped_at
        finally:
            if stopped:
                try:
                    os.kill(stopped, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, HUNG, stderr[-3000:])
        self.assertLess(took, 30)  # the timeout, the three periods of the second look, the abort
        self.assertRegex(stderr, r"strata: watchdog: rank 0 \(host \S+, dp 0, tp 0, pp 0\) has made no progress for "
                                 r"[\d.]+ s \(watchdog.timeout_s = 2\) at step \d+ \([a-z/ ]+\); 1 rank\(s\) have not "
                                 r"arrived:")
        self.assertRegex(stderr, r"strata: watchdog:   rank 1 \(host \S+, dp 0, tp 0, pp 1\): its heartbeat stopped "
                                 r"\(the last: step \d+, [a-z/ ]+\): the process is stopped, dead or its node "
                                 r"unreachable")
        self.assertEqual(stderr.count("has made no progress"), 1, "one report per hang")
        status = json.loads((out / "status.json").read_text())
        self.assertEqual(status["state"], "hung")
        self.assertEqual(status["reported_by"], 0)
        self.assertEqual([(m["rank"], m["pp"], m["pid"]) for m in status["not_arrived"]], [(1, 1, stopped)])
        # Resumable: the same run to a nearer end, from its last checkpoint.
        resumed_values = dict(values, **{"train.steps": status["step"] + 20, "checkpoint.resume": "auto"})
        r = run_ranks(2, "train", "--config", self.config("hang", resumed_values))
        self.check_ok(r)
        self.assertRegex(r.stdout, r"checkpoint: resumed from \S+ \(step \d+,")
        steps, _ = read_metrics(out / "metrics.jsonl")
        self.assertEqual([s["step"] for s in steps], list(range(1, status["step"] + 21)))
        self.assertEqual(json.loads((out / "status.json").read_text())["state"], "complete")

    def test_a_slow_rank_is_named_a_straggler(self):
        values = {"parallel.dp": 2, "train.steps": 40, "watchdog.straggler_every": 10}
        env = dict(MPI_ENV)
        MPI_ENV["STRATA_DEBUG_INJECT"] = "slow:1:1000:1"  # rank 1 sleeps before every forward/backward
        try:
            r = run_ranks(2, "train", "--config", self.config("slow", values))
        finally:
            MPI_ENV.clear()
            MPI_ENV.update(env)
        self.check_ok(r)
        lines = re.findall(r"stragglers: rank 1 \(host \S+, dp 1, tp 0, pp 0\) computes ([\d.]+) ms per step, "
                           r"([\d.]+)x the others' median [\d.]+ ms over steps (\d+) \.\. (\d+)", r.stdout)
        self.assertEqual([(int(a), int(b)) for _, _, a, b in lines], [(1, 10), (11, 20), (21, 30), (31, 40)], r.stdout)
        for ms, ratio, _, _ in lines:
            self.assertGreaterEqual(float(ms), 50)  # the injected sleep, at least
            self.assertGreater(float(ratio), 1.5)
        times = [json.loads(l) for l in (self.tmp / "slow" / "rank_times.jsonl").read_text().splitlines()]
        self.assertEqual([t["step"] for t in times], [10, 20, 30, 40])
        self.assertTrue(all(t["slowest_rank"] == 1 and t["straggler"] and len(t["busy_ms"]) == 2 for t in times))
        # The same run without the fault names nobody... unless this shared machine really slows a rank: the
        # report must then agree with its own numbers.
        r = run_ranks(2, "train", "--config", self.config("even", values))
        self.check_ok(r)
        for t in (json.loads(l) for l in (self.tmp / "even" / "rank_times.jsonl").read_text().splitlines()):
            self.assertEqual(t["straggler"], t["ratio"] > 1.5)

    def test_bad_settings_are_one_line(self):
        for key, value, expected in (("watchdog.timeout_s", -1, "watchdog.timeout_s = -1: expected >= 0"),
                                     ("watchdog.straggler_factor", 1, "watchdog.straggler_factor = 1: expected > 1"),
                                     ("watchdog.straggler_every", -5, "watchdog.straggler_every = -5: expected >= 0")):
            r = run_ranks(1, "train", "--config", self.config("bad", {key: value, "train.steps": 2}))
            self.assertIn(expected, self.mpi_error_line(r))


if __name__ == "__main__":
    unittest.main()
