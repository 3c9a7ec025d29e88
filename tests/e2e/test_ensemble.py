#!/usr/bin/python3
"""Ensembles end to end (`strata ensemble`, docs/training.md): each member's metrics equal `strata eval` of it, the
ensemble's (averaged probabilities, majority vote) equal numpy's combination of the members' `strata eval
--predictions` scores, a checkpoint directory is a member like a weights file, 2 ranks give the one-rank report, a
language-model ensemble is the mixture of its members, and bad members are refused with one line.

Run: /usr/bin/python3 tests/e2e/test_ensemble.py [-v]
"""
import json
import unittest

import h5py
import numpy as np

from test_cli import StrataTestCase, run_strata, text_dataset, write_config
from test_datasets import run_ranks

CNN = {
    "model.kind": "cnn", "model.channels": [4, 4], "model.norm_groups": 2, "model.hidden": 8,
    "train.batch_size": 8, "train.steps": 24, "train.lr": 1e-2, "train.warmup_steps": 0,
    "train.lr_schedule": "constant", "train.eval_batches": 0, "train.log_every": 100,
    "train.save_weights": "weights.h5", "checkpoint.every": 24,
}


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class EnsembleTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(6)
        x = rng.normal(size=(150, 1, 8, 8)).astype(np.float32)
        y = rng.integers(0, 3, size=150)
        for i, c in enumerate(y):
            x[i, 0, c * 2:c * 2 + 3, :] += 1.0  # a weak signal: members err differently
        images = self.images_dataset("images", x, y, val_fraction=0.3)
        self.config = write_config(self.tmp / "cnn.toml", dict(CNN, **{"data.path": images}))
        for seed in (1, 2, 3):
            self.check_ok(run_strata("train", "--config", self.config, "--set", f"train.seed={seed}", "--set",
                                     f"train.out_dir={self.tmp / f'm{seed}'}"))

    def ensemble(self, members, *args, ranks=1, config=None, expect_ok=True):
        r = run_ranks(ranks, "ensemble", "--config", config or self.config, *args,
                      *[a for m in members for a in ("--member", m)])
        if expect_ok:
            self.check_ok(r)
        return r

    def predictions(self, weights):
        out = self.tmp / (weights.parent.name + "-pred.h5")
        self.check_ok(run_strata("eval", "--config", self.config, "--weights", weights, "--predictions", out))
        with h5py.File(out, "r") as f:
            return f["scores"][()].astype(np.float64), f["y_true"][()]

    def test_members_and_ensembles_match_numpy(self):
        members = [self.tmp / "m1" / "weights.h5", self.tmp / "m2" / "weights.h5", self.tmp / "m3" / "checkpoints"]
        report_path = self.tmp / "mean.json"
        r = self.ensemble(members, "--metrics-json", report_path)
        self.assertIn("ensemble of 3 (mean)", r.stdout)
        report = json.loads(report_path.read_text())
        scores, y = zip(*(self.predictions(self.tmp / f"m{s}" / "weights.h5") for s in (1, 2, 3)))
        y = y[0]
        for member, z in zip(report["members"], scores):
            p = softmax(z)
            self.assertAlmostEqual(member["metrics"]["loss"], -np.mean(np.log(p[np.arange(len(y)), y])), delta=1e-5)
            self.assertAlmostEqual(member["metrics"]["accuracy"], np.mean(p.argmax(1) == y), places=12)
        mean = np.mean([softmax(z) for z in scores], axis=0)
        e = report["ensemble"]
        self.assertAlmostEqual(e["loss"], -np.mean(np.log(mean[np.arange(len(y)), y])), delta=1e-5)
        self.assertAlmostEqual(e["accuracy"], np.mean(mean.argmax(1) == y), places=12)
        # Majority vote, ties by the averaged probability.
        votes = np.zeros_like(mean)
        for z in scores:
            votes[np.arange(len(y)), z.argmax(1)] += 1
        vote_pred = (votes + 0.999 * mean).argmax(1)
        self.ensemble(members, "--combine", "vote", "--metrics-json", self.tmp / "vote.json")
        v = json.loads((self.tmp / "vote.json").read_text())["ensemble"]
        self.assertAlmostEqual(v["accuracy"], np.mean(vote_pred == y), places=12)
        self.assertAlmostEqual(v["loss"], e["loss"], places=12)
        # The members differ (an ensemble of one model three times would not test much).
        self.assertGreater(len({round(m["metrics"]["loss"], 6) for m in report["members"]}), 1)
        # Two ranks split the rows: the same report.
        self.ensemble(members, "--metrics-json", self.tmp / "mean2.json", ranks=2)
        two = json.loads((self.tmp / "mean2.json").read_text())
        self.assertAlmostEqual(two["ensemble"]["loss"], e["loss"], delta=1e-6)
        self.assertEqual(two["ensemble"]["confusion"], e["confusion"])

    def test_language_model_mixture(self):
        data = text_dataset(self.tmp)
        config = write_config(self.tmp / "gpt.toml", {
            "model.n_layer": 1, "model.n_head": 2, "model.d_model": 16, "model.vocab_size": 258, "model.seq_len": 16,
            "data.path": data, "train.batch_size": 4, "train.steps": 10, "train.eval_batches": 2,
            "train.save_weights": "weights.h5"})
        for seed in (1, 2):
            self.check_ok(run_strata("train", "--config", config, "--set", f"train.seed={seed}", "--set",
                                     f"train.out_dir={self.tmp / f'g{seed}'}"))
        a, b = self.tmp / "g1" / "weights.h5", self.tmp / "g2" / "weights.h5"
        self.ensemble([a, b], "--metrics-json", self.tmp / "lm.json", config=config)
        report = json.loads((self.tmp / "lm.json").read_text())
        member_loss = [m["val_loss"] for m in report["members"]]
        for weights, loss in zip((a, b), member_loss):  # the members' losses are strata eval's
            r = run_strata("eval", "--config", config, "--weights", weights)
            self.assertAlmostEqual(float(r.stdout.split("val loss ")[1].split()[0]), loss, delta=1e-5)
        # The mixture's cross-entropy is at most the members' mean (Jensen), and a model with itself is the model.
        self.assertLessEqual(report["ensemble"]["val_loss"], np.mean(member_loss) + 1e-9)
        self.assertNotAlmostEqual(report["ensemble"]["val_loss"], np.mean(member_loss), places=6)
        self.ensemble([a, a], "--metrics-json", self.tmp / "same.json", config=config)
        same = json.loads((self.tmp / "same.json").read_text())
        self.assertAlmostEqual(same["ensemble"]["val_loss"], member_loss[0], delta=1e-9)
        line = self.mpi_error_line(self.ensemble([a, b], "--combine", "vote", config=config, expect_ok=False))
        self.assertIn("--combine vote applies to classifiers", line)
        line = self.mpi_error_line(self.ensemble([self.tmp / "m1" / "weights.h5", a], expect_ok=False))
        self.assertIn(f"member '{a}' is a gpt, the config's model.kind is cnn", line)


    def test_bad_members(self):
        one = self.tmp / "m1" / "weights.h5"
        self.assertIn("1 member(s): expected at least 2", self.mpi_error_line(self.ensemble([one], expect_ok=False)))
        missing = self.tmp / "nope.h5"
        self.assertIn(f"member '{missing}' does not exist",
                      self.mpi_error_line(self.ensemble([one, missing], expect_ok=False)))
        line = self.mpi_error_line(self.ensemble([one, one], "--combine", "median", expect_ok=False))
        self.assertIn("--combine median: expected mean or vote", line)


if __name__ == "__main__":
    unittest.main()
