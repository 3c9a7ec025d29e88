#!/usr/bin/python3
"""Faults a long run meets, end to end (the watchdog and the guard have their own files; kill -9 at each point of a
synchronous save and damaged or truncated latest checkpoints are in test_checkpoints.py):

- a full disk during a checkpoint (a 1 MiB tmpfs mounted for the test as the checkpoint directory), synchronous and
  asynchronous: one line naming the step, the file and the cause; the partial file removed; `latest` and the earlier
  checkpoints intact; with space again, `--resume auto` ends where an uninterrupted run ends;
- a dataset shard truncated, or overwritten with garbage, mid-run: the run stops naming the shard;
- a rank killed (SIGKILL) during an asynchronous save, at 2 and at 4 ranks: `latest` names the previous checkpoint and
  the resumed run equals the uninterrupted one.

Needs root for mount(8) (CI runs as root, as the Slurm tests do); fails, saying so, without it.
Run: /usr/bin/python3 tests/e2e/test_faults.py [-v]
"""
import json
import os
import re
import subprocess
import time
import unittest

import h5py

from test_cli import STRATA, StrataTestCase, run_strata, write_config
from test_datasets import MPIEXEC, MPI_ENV

BASE = {"model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
        "train.batch_size": 8, "train.steps": 20, "train.eval_batches": 1, "train.log_every": 100,
        "train.tensorboard": False, "checkpoint.every": 5, "checkpoint.keep_last": 10}


def sharded_dataset(directory, shards=3):
    """300 repetitive documents, byte level, as a dataset directory of `shards` shards per split."""
    from test_cli import repetitive_text
    text = directory / "shards.txt"
    text.write_text("%\n".join(repetitive_text(300)))
    out = directory / "sharded"
    r = run_strata("preprocess", "text", text, "-o", out, "--doc-separator", "%", "--shards", shards, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    return out


class FaultTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        self.data = sharded_dataset(self.tmp)
        self.mounts = []

    def tearDown(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(m)], capture_output=True)
        super().tearDown()

    def mount_tmpfs(self, path, size):
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.fail(f"this test mounts a small tmpfs and needs root: mount failed: {r.stderr.strip()}")
        self.mounts.append(path)

    def train(self, name, values=None, ranks=1, env=None, resume=None):
        cfg = write_config(self.tmp / f"{name}-{time.monotonic_ns()}.toml",
                           dict(BASE, **(values or {}), **{"data.path": str(self.data),
                                                           "train.out_dir": str(self.tmp / name)}))
        args = [STRATA, "train", "--config", cfg] + (["--resume", resume] if resume else [])
        return subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(ranks), *args], env=dict(MPI_ENV, **(env or {})),
                              capture_output=True, text=True, errors="replace", timeout=300)

    def losses(self, name):
        steps = [json.loads(l) for l in (self.tmp / name / "metrics.jsonl").read_text().splitlines()]
        steps = [s for s in steps if "loss" in s]
        self.assertEqual([s["step"] for s in steps], list(range(1, len(steps) + 1)))
        return [s["loss"] for s in steps]

    def error_lines(self, r):
        self.assertNotEqual(r.returncode, 0, r.stdout[-2000:])
        return {re.sub(r" \[rank \d+, [^]]*\]$", "", l) for l in r.stderr.splitlines() if l.startswith("strata: error:")}

    def test_a_full_disk_during_a_checkpoint_loses_nothing(self):
        r = self.train("whole", {"parallel.dp": 2}, ranks=2)
        self.check_ok(r)
        want = self.losses("whole")
        for mode in ("sync", "async"):
            with self.subTest(mode=mode):
                disk = self.tmp / f"disk-{mode}"
                self.mount_tmpfs(disk, "1m")  # room for two checkpoints of this model, not three
                values = {"parallel.dp": 2, "checkpoint.dir": str(disk / "ckpt"),
                          "checkpoint.async": mode == "async"}
                r = self.train(mode, values, ranks=2)
                lines = self.error_lines(r)
                self.assertTrue(any("checkpoint: saving step 15 failed and was abandoned (step-00000015.h5.tmp "
                                    "removed); the newest complete checkpoint is still " in l and
                                    "step-00000010.h5" in l for l in lines), lines)
                self.assertTrue(any("No space left on device" in l for l in lines), lines)
                names = sorted(os.listdir(disk / "ckpt"))
                self.assertEqual(names, ["latest", "step-00000005.h5", "step-00000010.h5"])
                self.assertEqual((disk / "ckpt" / "latest").read_text().strip(), "step-00000010.h5")
                for step in (5, 10):
                    with h5py.File(disk / "ckpt" / f"step-{step:08d}.h5", "r") as f:
                        self.assertEqual(int(f.attrs["step"]), step)
                # Space again: the run resumes from step 10 and ends where the uninterrupted one does.
                subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
                r = self.train(mode, values, ranks=2, resume="auto")
                self.check_ok(r)
                self.assertIn("(step 10,", r.stdout)
                self.assertEqual(self.losses(mode), want)

    def test_a_shard_damaged_mid_run_stops_with_its_name(self):
        shard = self.data / "train-00001.h5"
        for damage in ("truncate", "garbage"):
            with self.subTest(damage=damage):
                copy = self.tmp / f"data-{damage}"
                subprocess.run(["cp", "-r", str(self.data), str(copy)], check=True)
                values = {"data.path": str(copy), "train.steps": 100000, "checkpoint.every": 0,
                          "data.prefetch": 1}
                cfg = write_config(self.tmp / f"{damage}.toml",
                                   dict(BASE, **values, **{"train.out_dir": str(self.tmp / damage)}))
                p = subprocess.Popen([STRATA, "train", "--config", cfg], env=MPI_ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
                metrics = self.tmp / damage / "metrics.jsonl"
                deadline = time.time() + 60
                while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
                    time.sleep(0.05)
                target = copy / shard.name
                if damage == "truncate":
                    os.truncate(target, 4096)
                else:  # the token data overwritten in place: ids far beyond the vocabulary
                    with h5py.File(target, "r") as f:
                        offset, size = f["train/tokens"].id.get_offset(), f["train/tokens"].id.get_storage_size()
                    with open(target, "r+b") as f:
                        f.seek(offset)
                        f.write(b"\xff" * size)
                try:
                    _, stderr = p.communicate(timeout=120)
                finally:
                    if p.poll() is None:
                        p.kill()
                self.assertNotEqual(p.returncode, 0)
                errors = [l for l in stderr.splitlines() if l.startswith("strata: error:")]
                self.assertEqual(len(errors), 1, stderr[-2000:])
                self.assertIn(str(target), errors[0])
                self.assertIn("shrank from" if damage == "truncate" else "token id 65535", errors[0])

    def test_a_rank_killed_during_an_async_save(self):
        for name, layout in (("dp2", {"parallel.dp": 2}), ("dp2pp2", {"parallel.dp": 2, "parallel.pp": 2}),
                             ("tp2pp2", {"parallel.tp": 2, "parallel.pp": 2})):
            with self.subTest(layout=name):
                ranks = layout.get("parallel.dp", 1) * layout.get("parallel.tp", 1) * layout.get("parallel.pp", 1)
                values = dict(layout, **{"checkpoint.async": True})
                r = self.train(f"{name}-whole", values, ranks=ranks)
                self.check_ok(r)
                want = self.losses(f"{name}-whole")
                victim = ranks - 1
                r = self.train(name, values, ranks=ranks, env={"STRATA_CRASH_AT": f"write:15:{victim}"})
                self.assertNotEqual(r.returncode, 0, "the injected crash did not happen")
                ckpt = self.tmp / name / "checkpoints"
                self.assertEqual((ckpt / "latest").read_text().strip(), "step-00000010.h5")
                r = self.train(name, values, ranks=ranks, resume="auto")
                self.check_ok(r)
                self.assertIn("(step 10,", r.stdout)
                self.assertEqual(self.losses(name), want)
                self.assertFalse(list(ckpt.glob("*.tmp")), "temporaries left behind")


if __name__ == "__main__":
    unittest.main()
