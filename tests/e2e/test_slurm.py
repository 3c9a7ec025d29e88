#!/usr/bin/python3
"""The Slurm scripts (jobs/*.sbatch) against a real single-node Slurm: munged, slurmctld and slurmd started on this
machine by tests/e2e/slurm/cluster.sh for the duration of the tests.

- jobs/train.sbatch with 2 tasks runs to completion through srun, its log shows 2 ranks;
- preemption: `scancel --signal=USR1 --batch` while the job trains makes it checkpoint, requeue itself and finish;
  its final loss equals that of an uninterrupted run of the same job;
- a 4-task array sweep (jobs/sweep.sbatch) finishes and its summary names the best trial;
- a 2-task cross-validation array (jobs/cv.sbatch) trains a fold per task and reports both;
- `scontrol requeue` of a running job: it resumes once, and the script submits no continuation;
- a rank stopped with SIGSTOP: the watchdog names it and ends the job (76), which requeues and resumes;
- a run already complete is not started again (until train.steps grows);
- a job with a bad config ends FAILED with the error in its log, without hanging;
- jobs/scaling.sbatch writes its strong and weak scaling rows;
- the same train script runs without Slurm (local fallback).

Run: /usr/bin/python3 tests/e2e/test_slurm.py [-v]
"""
import csv
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from test_cli import REPO, STRATA, text_dataset, write_config
from test_datasets import MPI_ENV

CLUSTER = REPO / "tests" / "e2e" / "slurm" / "cluster.sh"
_cluster_dir = None
ENV = dict(MPI_ENV, STRATA_BIN=STRATA, STRATA_REPO=str(REPO))


def setUpModule():
    global _cluster_dir
    _cluster_dir = tempfile.mkdtemp(prefix="strata-slurm-")
    r = subprocess.run(["bash", str(CLUSTER), "start", _cluster_dir], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"could not start the test Slurm cluster:\n{r.stdout}\n{r.stderr}")
    ENV["SLURM_CONF"] = os.path.join(_cluster_dir, "slurm.conf")


def tearDownModule():
    subprocess.run(["bash", str(CLUSTER), "stop", _cluster_dir], capture_output=True, timeout=120)
    subprocess.run(["rm", "-rf", _cluster_dir])


def slurm(*args, check=True):
    r = subprocess.run(list(map(str, args)), env=ENV, capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({r.returncode}): {r.stdout} {r.stderr}")
    return r.stdout.strip()


def job_fields(job):
    out = slurm("scontrol", "show", "job", "-o", job)
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def wait_for(job, states, timeout=240, on_poll=None):
    """Polls until the job is in one of `states`; returns its fields. Fails on timeout."""
    deadline = time.time() + timeout
    fields = {}
    while time.time() < deadline:
        fields = job_fields(job)
        if fields.get("JobState") in states:
            return fields
        if on_poll:
            on_poll(fields)
        time.sleep(0.5)
    raise AssertionError(f"job {job} not in {states} after {timeout} s: {fields.get('JobState')} "
                         f"({fields.get('Reason')})")


def final_losses(run_dir):
    lines = [json.loads(l) for l in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    steps = [l for l in lines if "loss" in l]
    return steps


class SlurmTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="strata-slurm-e2e-")
        self.tmp = Path(self._tmp.name)
        self.data = text_dataset(self.tmp)
        self.config = write_config(self.tmp / "tiny.toml", {
            "model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 257,
            "model.seq_len": 32, "data.path": self.data, "train.batch_size": 8, "train.steps": 30,
            "train.lr": 3e-3, "train.warmup_steps": 5, "train.eval_batches": 2})

    def tearDown(self):
        self._tmp.cleanup()

    def sbatch(self, *args, env=None):
        e = dict(ENV, **(env or {}))
        r = subprocess.run(["sbatch", "--parsable", f"--chdir={self.tmp}", *map(str, args)], env=e,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip().split(";")[0]

    def log(self, pattern):
        logs = sorted(self.tmp.glob(pattern))
        self.assertTrue(logs, f"no log {pattern} in {self.tmp}")
        return "".join(p.read_text(errors="replace") for p in logs)

    def start_training(self, sets):
        """Submits a 2-task train.sbatch job and returns (job, run directory) once it has trained 20 steps."""
        job = self.sbatch("--ntasks=2", REPO / "jobs" / "train.sbatch", self.config, *sets)
        run_dir = self.tmp / "runs" / f"strata-train-{job}"
        wait_for(job, {"RUNNING"})
        deadline = time.time() + 120
        while time.time() < deadline:  # let it train a little
            m = run_dir / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 20:
                break
            time.sleep(0.2)
        return job, run_dir

    def wait_through_requeue(self, job):
        """Waits for the job to end, releasing it once requeued; returns its fields."""
        pending_since = []

        def release(fields):
            # Slurm holds a requeued job for ~2 minutes; the test releases it after 5 s, enough for slurmd to finish
            # tearing down the first run's job step (a step of the same id must not launch while it is still there).
            if fields.get("JobState") == "PENDING" and int(fields.get("Restarts", "0")) >= 1:
                pending_since.append(time.time())
                if time.time() - pending_since[0] > 5:
                    slurm("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)

        return wait_for(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, on_poll=release)

    def test_train_runs_to_completion_on_two_ranks_through_srun(self):
        job = self.sbatch("--ntasks=2", REPO / "jobs" / "train.sbatch", self.config)
        fields = wait_for(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        log = self.log(f"slurm-strata-train-{job}.out")
        self.assertEqual(fields["JobState"], "COMPLETED", log)
        self.assertIn(f"strata: job {job} (restart 0): 2 ranks", log)
        self.assertIn("layout dp 2 x tp 1 x pp 1", log)
        self.assertIn("done: 30 steps", log)
        self.assertIn("strata: training complete", log)

    def test_preempted_job_checkpoints_requeues_and_finishes_like_an_uninterrupted_one(self):
        # A wider model and batch (a few ms per step), so the job is still training when the signal comes.
        steps = 2000
        sets = ["--set", f"train.steps={steps}", "--set", "model.d_model=64", "--set", "train.batch_size=16"]
        job, run_dir = self.start_training(sets)
        slurm("scancel", "--signal=USR1", "--batch", job)
        fields = self.wait_through_requeue(job)
        log = self.log(f"slurm-strata-train-{job}.out")
        self.assertEqual(fields["JobState"], "COMPLETED", log)
        self.assertEqual(fields["Restarts"], "1", log)
        self.assertIn("strata: got SIGUSR1", log)
        self.assertIn("(SIGUSR1): checkpoint written", log)
        self.assertIn(f"requeueing job {job}", log)
        self.assertIn(f"strata: job {job} (restart 1)", log)
        m = re.search(r"resumed from \S+ \(step (\d+),", log)
        self.assertIsNotNone(m, log)
        self.assertLess(int(m.group(1)), steps)
        got = final_losses(run_dir)
        self.assertEqual([s["step"] for s in got], list(range(1, steps + 1)))

        # The same job, uninterrupted (local fallback of the same script, same 2-rank layout): the same losses.
        local = subprocess.run(["bash", str(REPO / "jobs" / "train.sbatch"), self.config, *sets], cwd=self.tmp,
                               env=dict(ENV, STRATA_RANKS="2", STRATA_OUT=str(self.tmp / "uninterrupted")),
                               capture_output=True, text=True, timeout=600)
        self.assertEqual(local.returncode, 0, local.stdout[-2000:] + local.stderr[-2000:])
        self.assertIn("no Slurm allocation: running locally with 2 ranks", local.stdout)
        want = final_losses(self.tmp / "uninterrupted")
        self.assertEqual([s["loss"] for s in got], [s["loss"] for s in want])

    def test_operator_requeue_resumes_once_without_a_continuation(self):
        """`scontrol requeue` of a running job (what an operator, a node failure or preemption does): the ranks
        checkpoint and exit 75, the script sees that Slurm has requeued the job already and submits nothing; the
        requeued job resumes and completes, every step once."""
        steps = 2000
        sets = ["--set", f"train.steps={steps}", "--set", "model.d_model=64", "--set", "train.batch_size=16"]
        job, run_dir = self.start_training(sets)
        slurm("scontrol", "requeue", job)
        fields = self.wait_through_requeue(job)
        log = self.log(f"slurm-strata-train-{job}.out")
        self.assertEqual(fields["JobState"], "COMPLETED", log)
        self.assertEqual(fields["Restarts"], "1", log)
        self.assertIn(f"Slurm has requeued job {job} already", log)
        self.assertNotIn("submitting a continuation", log)
        self.assertNotIn(f"requeueing job {job}", log)
        self.assertEqual(slurm("squeue", "-h", "-o", "%i"), "", "no other job may be queued")
        self.assertEqual(sorted(p.name for p in self.tmp.glob("slurm-*.out")), [f"slurm-strata-train-{job}.out"])
        self.assertRegex(log, r"resumed from \S+ \(step \d+,")
        self.assertEqual([s["step"] for s in final_losses(run_dir)], list(range(1, steps + 1)))

    def test_a_hung_rank_ends_the_job_which_requeues_and_resumes(self):
        """One rank stopped (SIGSTOP) mid-run: the watchdog names it, the job ends with 76, the script treats that
        like a preemption (requeue), and the requeued job resumes from the last checkpoint to the end."""
        steps = 2000
        sets = ["--set", f"train.steps={steps}", "--set", "model.d_model=64", "--set", "train.batch_size=16",
                "--set", "checkpoint.every=100", "--set", "watchdog.timeout_s=3"]
        job, run_dir = self.start_training(sets)
        deadline = time.time() + 120
        while not (run_dir / "checkpoints" / "latest").exists() and time.time() < deadline:
            time.sleep(0.2)
        pid = json.loads((run_dir / "heartbeat" / "rank-000001.json").read_text())["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            fields = self.wait_through_requeue(job)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log = self.log(f"slurm-strata-train-{job}.out")
        self.assertEqual(fields["JobState"], "COMPLETED", log)
        self.assertEqual(fields["Restarts"], "1", log)
        self.assertRegex(log, r"strata: watchdog:   rank 1 \(host \S+, dp 1, tp 0, pp 0\): its heartbeat stopped")
        self.assertIn("the watchdog ended a hung job", log)
        self.assertIn(f"requeueing job {job}", log)
        self.assertRegex(log, r"resumed from \S+ \(step \d+00,")
        self.assertEqual([s["step"] for s in final_losses(run_dir)], list(range(1, steps + 1)))

    def test_a_complete_run_is_not_started_again(self):
        out = self.tmp / "done"
        env = dict(ENV, STRATA_RANKS="1", STRATA_OUT=str(out))
        env.pop("SLURM_CONF", None)

        def run(*sets):
            return subprocess.run(["bash", str(REPO / "jobs" / "train.sbatch"), self.config, "--set", "train.steps=6",
                                   *sets], cwd=self.tmp, env=env, capture_output=True, text=True, timeout=300)
        first = run()
        self.assertEqual(first.returncode, 0, first.stdout[-2000:] + first.stderr[-2000:])
        metrics = (out / "metrics.jsonl").read_text()
        again = run()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn(f"strata: {out} is complete (step 6 of 6, status.json): nothing to do", again.stdout)
        self.assertNotIn("step ", again.stdout.replace("(step 6", ""))
        self.assertEqual((out / "metrics.jsonl").read_text(), metrics)
        # More steps: the run continues from its checkpoint... or from scratch without one; either way it trains on.
        more = run("--set", "train.steps=8", "--set", "checkpoint.every=2")
        self.assertEqual(more.returncode, 0, more.stdout[-2000:] + more.stderr[-2000:])
        self.assertIn("done: ", more.stdout)

    def test_array_sweep_summarizes_the_best_trial(self):
        job = self.sbatch("--array=0-3", REPO / "jobs" / "sweep.sbatch", self.config, "--set", "train.steps=40",
                          env={"STRATA_SWEEP": "train.lr=1e-3,3e-3 train.warmup_steps=0,5"})
        for task in range(4):
            fields = wait_for(f"{job}_{task}", {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
            self.assertEqual(fields["JobState"], "COMPLETED", self.log(f"slurm-strata-sweep-{job}_{task}.out"))
        sweep = self.tmp / "runs" / f"sweep-{job}"
        results = [json.loads((sweep / f"trial-{i}.json").read_text()) for i in range(4)]
        self.assertEqual(sorted(tuple(r["sets"]) for r in results),
                         sorted([("train.lr=1e-3", "train.warmup_steps=0"), ("train.lr=1e-3", "train.warmup_steps=5"),
                                 ("train.lr=3e-3", "train.warmup_steps=0"), ("train.lr=3e-3", "train.warmup_steps=5")]))
        best = min(results, key=lambda r: r["val_loss"])
        rows = (sweep / "summary.csv").read_text().splitlines()
        self.assertEqual(len(rows), 5)
        self.assertTrue(rows[1].startswith(f"1,{best['trial']},"), rows)
        summary = subprocess.run(["python3", str(REPO / "jobs" / "sweep.py"), "summary", str(sweep)],
                                 capture_output=True, text=True).stdout
        self.assertIn(f"best: trial {best['trial']} ({' '.join(best['sets'])})", summary)

    def test_array_cross_validation_reports_every_fold(self):
        # jobs/cv.sbatch: one fold per array task; the last to finish writes the report.
        job = self.sbatch("--array=0-1", REPO / "jobs" / "cv.sbatch", self.config, "--folds", "2", "--set",
                          "train.steps=20")
        for task in range(2):
            fields = wait_for(f"{job}_{task}", {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
            self.assertEqual(fields["JobState"], "COMPLETED", self.log(f"slurm-strata-cv-{job}_{task}.out"))
        report = json.loads((self.tmp / "runs" / f"cv-{job}" / "cv.json").read_text())
        self.assertEqual(report["folds"], 2)
        self.assertEqual([f["fold"] for f in report["per_fold"]], [0, 1])
        self.assertEqual({f["step"] for f in report["per_fold"]}, {20})

    def test_scaling_study_writes_strong_and_weak_rows(self):
        out = self.tmp / "scaling.csv"
        job = self.sbatch("--ntasks=2", REPO / "jobs" / "scaling.sbatch", self.config,
                          env={"STRATA_SCALING_CSV": str(out), "STRATA_SCALING_STEPS": "8"})
        fields = wait_for(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        log = self.log(f"slurm-strata-scaling-{job}.out")
        self.assertEqual(fields["JobState"], "COMPLETED", log)
        rows = list(csv.DictReader(out.open()))
        self.assertEqual([(r["mode"], r["ranks"], r["global_batch"]) for r in rows],
                         [("strong", "1", "8"), ("strong", "2", "8"), ("weak", "2", "16")])
        self.assertEqual(float(rows[0]["efficiency"]), 1.0)
        self.assertTrue(all(float(r["ms_per_step"]) > 0 for r in rows))
        self.assertIn("| strong | 2 | 1 | 8 |", log)

    def test_bad_config_fails_with_the_error_in_the_log(self):
        job = self.sbatch("--ntasks=2", REPO / "jobs" / "train.sbatch", self.config, "--set", "model.n_head=5")
        fields = wait_for(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, timeout=120)
        log = self.log(f"slurm-strata-train-{job}.out")
        self.assertEqual(fields["JobState"], "FAILED", log)
        self.assertIn("strata: error:", log)
        self.assertIn("model.n_head", log)
        self.assertIn("training failed", log)


if __name__ == "__main__":
    unittest.main()
