#!/usr/bin/python3
"""Continual training end to end (`--init-from`, train.l2_init, data.old_path; docs/training.md): a run on task B starts
from task A's weights (a weights file or a checkpoint directory) with a new optimizer and schedule, reports how much of
task A it forgets (forgetting.json, before and after), forgets less with an L2 pull toward A's weights or with a
replayed fraction of A's samples in every batch, equals the
one-rank run at other layouts, resumes exactly (neither re-initialised nor losing the 'before'), and bad settings are
refused with one line.

Run: /usr/bin/python3 tests/e2e/test_continual.py [-v]
"""
import json
import unittest

import numpy as np

from test_cli import StrataTestCase, read_metrics, write_config
from test_datasets import run_ranks

MODEL = {"model.kind": "cnn", "model.channels": [4, 4], "model.norm_groups": 2, "model.hidden": 8,
         "model.num_classes": 6}
TRAIN = {
    "train.batch_size": 8, "train.steps": 20, "train.lr": 1e-2, "train.warmup_steps": 0,
    "train.lr_schedule": "constant", "train.eval_every": 10, "train.eval_batches": 0, "train.log_every": 100,
    "train.save_weights": "weights.h5",
}


class ContinualTest(StrataTestCase):
    def make_task(self, name, classes, seed):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(120, 1, 8, 8)).astype(np.float32)
        y = rng.choice(classes, size=120)
        for i, c in enumerate(y):
            x[i, 0, c, :] += 2.5  # class c brightens row c
        return self.images_dataset(name, x, y, val_fraction=0.25, num_classes=6)

    def setUp(self):
        super().setUp()
        self.task_a = self.make_task("a", [0, 1, 2], 1)
        self.task_b = self.make_task("b", [3, 4, 5], 2)
        self.train("A", {"data.path": self.task_a, "checkpoint.every": 20})
        self.b = {"data.path": self.task_b, "data.old_path": self.task_a,
                  "train.init_from": str(self.tmp / "A" / "weights.h5")}

    def train(self, name, values, ranks=1, resume=None, expect_ok=True):
        cfg = write_config(self.tmp / f"{name}.toml",
                           {**MODEL, **TRAIN, **values, "train.out_dir": str(self.tmp / name)})
        r = run_ranks(ranks, "train", "--config", cfg, *(["--resume", resume] if resume else []))
        if expect_ok:
            self.check_ok(r)
        return r

    def forgetting(self, name):
        return json.loads((self.tmp / name / "forgetting.json").read_text())

    def steps(self, name):
        return read_metrics(self.tmp / name / "metrics.jsonl")[0]

    def test_forgetting_and_the_pull_toward_the_old_weights(self):
        r = self.train("B", self.b)
        self.assertIn("init: weights from", r.stdout)
        self.assertIn("forgetting: old task", r.stdout)
        f = self.forgetting("B")
        a_final = read_metrics(self.tmp / "A" / "metrics.jsonl")[1][-1]
        # 'before' is task A's own final validation; training on B alone forgets much of it.
        self.assertAlmostEqual(f["before"]["val_accuracy"], a_final["val_accuracy"], places=12)
        self.assertGreater(f["before"]["val_accuracy"], 0.6)  # 3 classes: chance is 1/3
        self.assertLess(f["after"]["val_accuracy"], f["before"]["val_accuracy"] - 0.3)  # task B's classes only
        # Started from A: not the fresh run's first loss.
        self.train("fresh", {"data.path": self.task_b})
        self.assertNotEqual(self.steps("B")[0]["loss"], self.steps("fresh")[0]["loss"])
        # The pull toward A's weights: logged as the penalty (0 at the first step, where w = w_A), less forgetting.
        pulled = dict(self.b, **{"train.l2_init": 5.0})
        self.train("pulled", pulled)
        steps = self.steps("pulled")
        self.assertEqual(steps[0]["penalty"], 0.0)
        self.assertGreater(steps[-1]["penalty"], 0.0)
        self.assertGreater(self.forgetting("pulled")["after"]["val_accuracy"], f["after"]["val_accuracy"])
        # The checkpoint directory of A gives the same run as its weights file.
        self.train("from_ckpt", dict(self.b, **{"train.init_from": str(self.tmp / "A" / "checkpoints")}))
        self.assertEqual([s["loss"] for s in self.steps("from_ckpt")], [s["loss"] for s in self.steps("B")])
        # Other layouts: the one-rank run.
        for name, values in [("dp2z", {"parallel.dp": 2, "parallel.zero1": True}),
                             ("pp2", {"parallel.pp": 2, "train.micro_batch_size": 4})]:
            with self.subTest(layout=name):
                self.train(name, dict(pulled, **values), ranks=2)
                for a, b in zip(self.steps(name), steps):
                    self.assertAlmostEqual(a["loss"] / b["loss"], 1, delta=1e-5)
                    self.assertAlmostEqual(a["penalty"], b["penalty"], delta=1e-5 * max(1.0, b["penalty"]))
                self.assertAlmostEqual(self.forgetting(name)["after"]["val_loss"],
                                       self.forgetting("pulled")["after"]["val_loss"], delta=1e-5)

    def test_replay(self):
        # Half of each batch (the last 4 of 8 rows) replays task A: less forgetting than without; the same rows at every
        # layout (dp 2 puts the replayed rows on rank 1 only) and across a resume.
        self.train("plain", self.b)
        replay = dict(self.b, **{"data.replay_fraction": 0.5})
        r = self.train("replay", replay)
        self.assertIn("replaying 4 of 8 rows per batch", r.stdout)
        self.assertGreater(self.forgetting("replay")["after"]["val_accuracy"],
                           self.forgetting("plain")["after"]["val_accuracy"] + 0.1)
        steps = self.steps("replay")
        self.assertNotEqual([s["loss"] for s in steps], [s["loss"] for s in self.steps("plain")])
        for name, values in [("rdp2", {"parallel.dp": 2}), ("rdp2a", {"parallel.dp": 2, "train.micro_batch_size": 2}),
                             ("rpp2", {"parallel.pp": 2, "train.micro_batch_size": 4})]:
            with self.subTest(layout=name):
                self.train(name, dict(replay, **values), ranks=2)
                for a, b in zip(self.steps(name), steps):
                    self.assertAlmostEqual(a["loss"] / b["loss"], 1, delta=1e-5)
        cut = dict(replay, **{"checkpoint.every": 10})
        self.train("rcut", dict(cut, **{"train.steps": 10}))
        self.train("rcut", cut, resume="auto")
        self.train("rwhole", cut)
        self.assertEqual([s["loss"] for s in self.steps("rcut")], [s["loss"] for s in self.steps("rwhole")])
        line = self.mpi_error_line(self.train("rbad", dict(self.b, **{"data.replay_fraction": 0.01}),
                                              expect_ok=False))
        self.assertIn("data.replay_fraction = 0.01 of train.batch_size = 8 is 0 rows: expected 1 .. 7", line)

    def test_resume_is_exact(self):
        cut = dict(self.b, **{"train.l2_init": 1.0, "checkpoint.every": 10})
        self.train("whole", cut)
        self.train("cut", dict(cut, **{"train.steps": 10}))
        before = self.forgetting("cut")["before"]
        self.train("cut", cut, resume="auto")
        self.assertEqual([s["loss"] for s in self.steps("cut")], [s["loss"] for s in self.steps("whole")])
        self.assertEqual([s["penalty"] for s in self.steps("cut")], [s["penalty"] for s in self.steps("whole")])
        f = self.forgetting("cut")
        self.assertEqual(f["before"], before)
        self.assertEqual(f["after"], self.forgetting("whole")["after"])


    def test_bad_settings(self):
        line = self.mpi_error_line(self.train("bad1", {"data.path": self.task_b, "train.l2_init": 1.0},
                                              expect_ok=False))
        self.assertIn("train.l2_init = 1 pulls toward the starting weights: it needs train.init_from", line)
        line = self.mpi_error_line(self.train("bad2", dict(self.b, **{"model.hidden": 5}), expect_ok=False))
        self.assertIn("weights.h5", line)
        line = self.mpi_error_line(self.train("bad3", dict(self.b, **{"train.init_from": str(self.tmp / "nope")}),
                                              expect_ok=False))
        self.assertIn("nope' does not exist", line)


if __name__ == "__main__":
    unittest.main()
