#!/usr/bin/python3
"""End-to-end checkpoint tests (docs/checkpoint-format.md): exact restart on the same layout, restart on another
layout (ZeRO-1 on or off either side), kill -9 at any point of a save, damaged checkpoints, config mismatch, async
saves. Each restart test interrupts a run with a real SIGKILL (STRATA_CRASH_AT, or kill from outside) and resumes
it with `--resume auto`, then compares the loss of every step with an uninterrupted run.

Run: /usr/bin/python3 tests/e2e/test_checkpoints.py [-v] [TestClass.test_name]
"""
import json
import os
import signal
import subprocess
import time
import unittest

import h5py
import numpy as np

from test_cli import STRATA, StrataTestCase, text_dataset, write_config
from test_datasets import MPI_ENV, MPIEXEC

BASE = {
    "model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
    "train.batch_size": 8, "train.steps": 20, "train.lr": 1e-3, "train.warmup_steps": 3, "train.eval_every": 0,
    "train.eval_batches": 1, "checkpoint.every": 5, "checkpoint.keep_last": 2,
}
REL_TOL = 1e-5  # float32 reduction order across layouts


def ckpt_name(step):
    return f"step-{step:08d}.h5"


def layout(dp, tp, pp, zero1=False):
    return {"parallel.dp": dp, "parallel.tp": tp, "parallel.pp": pp, "parallel.zero1": zero1}


class CheckpointTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        self.data = text_dataset(self.tmp)

    def run_train(self, name, values, resume=None, crash=None, expect_ok=True):
        ranks = values.get("parallel.dp", 1) * values.get("parallel.tp", 1) * values.get("parallel.pp", 1)
        cfg = write_config(self.tmp / f"{name}-{time.monotonic_ns()}.toml",
                           dict(BASE, **values, **{"data.path": self.data, "train.out_dir": str(self.tmp / name)}))
        env = dict(MPI_ENV)
        if crash:
            env["STRATA_CRASH_AT"] = crash
        args = [STRATA, "train", "--config", cfg] + (["--resume", resume] if resume else [])
        r = subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(ranks), *args], env=env, capture_output=True,
                           text=True, errors="replace", timeout=300)
        if expect_ok:
            self.check_ok(r)
        return r

    def losses(self, name):
        lines = [json.loads(l) for l in (self.tmp / name / "metrics.jsonl").read_text().splitlines()]
        steps = [l for l in lines if "loss" in l]
        self.assertEqual([s["step"] for s in steps], list(range(1, len(steps) + 1)), "steps missing or repeated")
        return [s["loss"] for s in steps]

    def ckpt_dir(self, name):
        return self.tmp / name / "checkpoints"

    def interrupted_then_resumed(self, name, first, second, crash="write:15:-1"):
        """Runs `first` until a SIGKILL during the step-15 save, then resumes with `second`; returns the losses."""
        r = self.run_train(name, first, crash=crash, expect_ok=False)
        self.assertEqual(r.returncode != 0, True, "the injected crash did not happen")
        r = self.run_train(name, second, resume="auto")
        self.assertIn("checkpoint: resumed from", r.stdout)
        return self.losses(name), r

    def assert_close(self, got, want):
        self.assertEqual(len(got), len(want))
        worst = max(abs(a - b) / abs(b) for a, b in zip(got, want))
        self.assertLess(worst, REL_TOL, f"losses differ by {worst:.3g} relative:\n{got}\n{want}")


class ExactRestartTest(CheckpointTest):
    def test_same_layout_is_bit_identical(self):
        for lay in (layout(1, 1, 1), layout(2, 1, 1, zero1=True)):
            with self.subTest(layout=lay):
                self.run_train("whole", lay)
                want = self.losses("whole")
                got, r = self.interrupted_then_resumed("cut", lay, lay)
                self.assertIn("step-00000010.h5 (step 10", r.stdout)  # the step-15 save never completed
                self.assertEqual(got, want)  # every step, bit for bit
                for d in ("whole", "cut"):
                    subprocess.run(["rm", "-rf", str(self.tmp / d)], check=True)

    def test_resume_auto_without_checkpoints_starts_fresh(self):
        r = self.run_train("fresh", {"train.steps": 6}, resume="auto")
        self.assertIn("no valid checkpoint", r.stdout)
        self.assertEqual(len(self.losses("fresh")), 6)

    def test_async_save_gives_the_same_run(self):
        self.run_train("sync", {})
        r = self.run_train("async", {"checkpoint.async": True})
        self.assertEqual(self.losses("async"), self.losses("sync"))
        self.assertIn("held the step loop", r.stdout)
        self.assertIn("(async)", r.stdout)
        self.assertEqual((self.ckpt_dir("async") / "latest").read_text().strip(), "step-00000020.h5")
        kept = sorted(p.name for p in self.ckpt_dir("async").glob("step-*.h5"))
        self.assertEqual(kept, ["step-00000015.h5", "step-00000020.h5"])  # keep_last = 2
        # The async run's last checkpoint resumes like any other.
        r = self.run_train("async", {"train.steps": 20}, resume=str(self.ckpt_dir("async") / "step-00000015.h5"))
        self.assertEqual(self.losses("async"), self.losses("sync"))


class OtherLayoutTest(CheckpointTest):
    CASES = [  # (written with, resumed on)
        (layout(2, 2, 2, zero1=True), layout(1, 1, 1)),
        (layout(1, 1, 1), layout(2, 1, 2, zero1=True)),
        (layout(2, 2, 1), layout(1, 2, 2)),
        (layout(2, 1, 1, zero1=True), layout(2, 2, 1, zero1=False)),
    ]

    def test_restart_on_another_layout(self):
        for i, (first, second) in enumerate(self.CASES):
            with self.subTest(first=first, second=second):
                self.run_train(f"whole{i}", first)
                got, r = self.interrupted_then_resumed(f"cut{i}", first, second)
                self.assertIn(f"layout dp {first['parallel.dp']} x tp {first['parallel.tp']} x pp "
                              f"{first['parallel.pp']}", r.stdout)
                self.assert_close(got, self.losses(f"whole{i}"))


class IoModeTest(CheckpointTest):
    """checkpoint.io = direct (two-phase writes with O_DIRECT), buffered (the same through the page cache) and hdf5
    (collective H5Dwrite) write the same checkpoint: every tensor equal bit for bit, the same checksums. At (2,2,2)
    with ZeRO-1 tensor-parallel shards interleave ranks row by row and the moments split mid-tensor."""

    def test_every_io_mode_writes_the_same_tensors(self):
        lay = dict(layout(2, 2, 2, zero1=True), **{"train.steps": 10})
        tensors = {}
        for io in ("direct", "buffered", "hdf5"):
            r = self.run_train(io, dict(lay, **{"checkpoint.io": io}))
            self.assertIn("hdf5 collective writes" if io == "hdf5" else "two-phase, 8 writers", r.stdout.lower())
            if io == "direct":  # this file system takes O_DIRECT (ext4, xfs); say so if a CI machine's does not
                self.assertRegex(r.stdout, r"O_DIRECT\)|page cache \(")
            with h5py.File(self.ckpt_dir(io) / ckpt_name(10), "r") as f:
                tensors[io] = {f"{g}/{n}": (f[g][n][...], f[g][n].attrs["checksum"]) for g in f for n in f[g]}
        groups = [name.split("/")[0] for name in tensors["direct"]]
        self.assertEqual({g: groups.count(g) for g in set(groups)}, {g: groups.count("params") for g in
                                                                       ("params", "adam_m", "adam_v")})
        for io in ("buffered", "hdf5"):
            self.assertEqual(tensors[io].keys(), tensors["direct"].keys())
            for name, (values, checksum) in tensors["direct"].items():
                np.testing.assert_array_equal(tensors[io][name][0], values, err_msg=f"{io}: {name}")
                self.assertEqual(tensors[io][name][1], checksum, f"{io}: {name}")
        self.assertEqual(self.losses("direct"), self.losses("hdf5"))


class CrashDuringSaveTest(CheckpointTest):
    def test_kill_at_each_point_of_a_save_leaves_a_loadable_latest(self):
        self.run_train("whole", {})
        want = self.losses("whole")
        # Mid-write on one rank of two; after every rank synced, before the rename; after the rename, before `latest`.
        for point, expect_resume_step in (("write:15:1", 10), ("before_commit:15:0", 10), ("before_latest:15:0", 10)):
            with self.subTest(point=point):
                name = "cut-" + point.split(":")[0]
                r = self.run_train(name, layout(2, 1, 1), crash=point, expect_ok=False)
                self.assertNotEqual(r.returncode, 0)
                latest = (self.ckpt_dir(name) / "latest").read_text().strip()
                self.assertEqual(latest, "step-00000010.h5")
                with h5py.File(self.ckpt_dir(name) / latest, "r") as f:  # complete, readable
                    self.assertEqual(int(f.attrs["step"]), 10)
                r = self.run_train(name, layout(2, 1, 1), resume="auto")
                self.assertIn(f"(step {expect_resume_step},", r.stdout)
                self.assert_close(self.losses(name), want)
                self.assertFalse(list(self.ckpt_dir(name).glob("*.tmp")), "temporaries left behind")

    def test_kill_from_outside_at_random_moments(self):
        # Saves every step of a slower run; SIGKILL the whole job at several moments. Whatever the moment, `latest`
        # names a complete checkpoint and the run resumes.
        rng = np.random.default_rng(0)
        values = {"checkpoint.every": 1, "train.steps": 400, "checkpoint.keep_last": 3, "parallel.dp": 2}
        for trial in range(3):
            name = f"killed{trial}"
            cfg = write_config(self.tmp / f"{name}.toml",
                               dict(BASE, **values, **{"data.path": self.data, "train.out_dir": str(self.tmp / name)}))
            p = subprocess.Popen([MPIEXEC, "--oversubscribe", "-np", "2", STRATA, "train", "--config", cfg], env=MPI_ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            latest = self.ckpt_dir(name) / "latest"
            deadline = time.time() + 60
            while not latest.exists() and time.time() < deadline and p.poll() is None:
                time.sleep(0.01)
            self.assertIsNone(p.poll(), "the run ended before its first checkpoint")
            time.sleep(float(rng.uniform(0.05, 0.4)))
            # kill -9 every process of the job at once (mpiexec and the ranks, which Open MPI puts in their own process
            # groups: match the config path on their command lines).
            subprocess.run(["pkill", "-KILL", "-f", cfg], check=False)
            p.wait()
            step = int(latest.read_text().strip()[5:13])
            with h5py.File(self.ckpt_dir(name) / latest.read_text().strip(), "r") as f:
                self.assertEqual(int(f.attrs["step"]), step)
            r = self.run_train(name, dict(values, **{"train.steps": step + 2}), resume="auto")
            self.assertIn(f"(step {step},", r.stdout)


class StopTest(CheckpointTest):
    """Stopping early (what Slurm preemption and time limits use): a checkpoint, exit code 75, status.json."""

    def status(self, name):
        return json.loads((self.tmp / name / "status.json").read_text())

    def test_time_budget_stops_with_a_checkpoint_and_resumes_to_the_same_losses(self):
        values = {"train.steps": 400, "checkpoint.every": 0}
        self.run_train("whole", values)
        self.assertEqual(self.status("whole"), {"state": "complete", "step": 400})
        r = self.run_train("cut", dict(values, **{"train.max_wall_minutes": 0.005}), expect_ok=False)  # 0.3 s
        self.assertEqual(r.returncode, 75, r.stderr[-2000:])
        self.assertIn("the time budget train.max_wall_minutes", r.stdout)
        stopped = self.status("cut")
        self.assertEqual(stopped["state"], "stopped")
        self.assertLess(stopped["step"], 400)
        self.assertTrue((self.ckpt_dir("cut") / ckpt_name(stopped["step"])).exists())
        self.run_train("cut", values, resume="auto")
        self.assertEqual(self.status("cut"), {"state": "complete", "step": 400})
        self.assertEqual(self.losses("cut"), self.losses("whole"))

    def test_sigterm_to_the_ranks_stops_every_rank_at_the_same_step(self):
        values = dict(BASE, **layout(2, 1, 1), **{"train.steps": 3000, "checkpoint.every": 0, "data.path": self.data,
                                                  "train.out_dir": str(self.tmp / "term")})
        cfg = write_config(self.tmp / "term.toml", values)
        p = subprocess.Popen([MPIEXEC, "--oversubscribe", "-np", "2", STRATA, "train", "--config", cfg], env=MPI_ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        metrics = self.tmp / "term" / "metrics.jsonl"
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 20:
                break
            time.sleep(0.05)
        # Only rank processes (their command line starts with the strata binary), one of them: the other learns
        # of it through the collective agreement at the next step boundary.
        ranks = subprocess.run(["pgrep", "-f", f"^{STRATA} train --config {cfg}"], capture_output=True, text=True)
        pids = ranks.stdout.split()
        self.assertEqual(len(pids), 2, ranks.stdout)
        os.kill(int(pids[0]), signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 75, err[-2000:])
        self.assertIn("(SIGTERM): checkpoint written", out)
        step = self.status("term")["step"]
        self.assertTrue((self.ckpt_dir("term") / ckpt_name(step)).exists())


class DamagedCheckpointTest(CheckpointTest):
    def corrupt_one_value(self, path):
        with h5py.File(path, "r+") as f:
            d = f["params/h.1.mlp.c_fc.weight"]
            d[3, 7] = d[3, 7] + 1.0

    def test_corrupt_latest_falls_back_and_named_one_fails(self):
        self.run_train("whole", {})
        want = self.losses("whole")
        self.run_train("cut", {}, crash="write:20:-1", expect_ok=False)  # leaves 10 and 15
        latest = self.ckpt_dir("cut") / "step-00000015.h5"
        self.corrupt_one_value(latest)
        # Named explicitly: a clear error, nothing trained.
        r = self.run_train("cut", {}, resume=str(latest), expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("checksum mismatch in tensor 'params/h.1.mlp.c_fc.weight'", r.stderr)
        # auto: says so and falls back to step 10.
        r = self.run_train("cut", {}, resume="auto")
        self.assertIn("checksum mismatch", r.stdout)
        self.assertIn("falling back", r.stdout)
        self.assertIn("(step 10,", r.stdout)
        self.assertEqual(self.losses("cut"), want)

    def test_truncated_checkpoint_falls_back(self):
        self.run_train("cut", {}, crash="write:20:-1", expect_ok=False)
        latest = self.ckpt_dir("cut") / "step-00000015.h5"
        latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
        r = self.run_train("cut", {}, resume="auto")
        self.assertIn("falling back", r.stdout)
        self.assertIn("(step 10,", r.stdout)

    def test_model_config_mismatch_is_named(self):
        self.run_train("run", {"train.steps": 5})
        r = self.run_train("run", {"model.n_layer": 3}, resume="auto", expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("model.n_layer = 2 in the checkpoint, 3 in the config", r.stderr)


if __name__ == "__main__":
    unittest.main()
