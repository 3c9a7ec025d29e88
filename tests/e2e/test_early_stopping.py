#!/usr/bin/python3
"""Early stopping end to end (docs/training.md): the best weights kept in <out_dir>/best.h5 and equal to a run that
stopped at the best step, a stop after `patience` evaluations without improvement, a resumed run that stops where
the uninterrupted one did (the state travels in the checkpoint), a stopped run that resuming does not restart, and
bad settings refused with one line.

Run: /usr/bin/python3 tests/e2e/test_early_stopping.py [-v]
"""
import json
import subprocess
import time
import unittest

import h5py
import numpy as np

from test_cli import STRATA, StrataTestCase, read_metrics, text_dataset, write_config

BASE = {
    "model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
    "train.batch_size": 8, "train.steps": 24, "train.lr": 2e-3, "train.warmup_steps": 0,
    "train.lr_schedule": "constant", "train.eval_every": 2, "train.eval_batches": 2, "checkpoint.every": 2,
    "checkpoint.keep_last": 20,
}


def weights(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f.keys()}


class EarlyStoppingTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        self.data = text_dataset(self.tmp)

    def train(self, name, values, resume=None, expect_ok=True):
        cfg = write_config(self.tmp / f"{name}-{time.monotonic_ns()}.toml",
                           dict(BASE, **values, **{"data.path": self.data, "train.out_dir": str(self.tmp / name)}))
        args = [STRATA, "train", "--config", cfg] + (["--resume", resume] if resume else [])
        r = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=300)
        if expect_ok:
            self.check_ok(r)
        return r

    def evals(self, name):
        return read_metrics(self.tmp / name / "metrics.jsonl")[1]

    def test_best_weights_are_those_of_the_best_step(self):
        # The validation loss falls over these 24 steps: the best is the last evaluation.
        r = self.train("run", {"train.early_stop_metric": "val_loss", "train.save_weights": "final.h5"})
        evals = self.evals("run")
        losses = [e["val_loss"] for e in evals]
        best = min(range(len(losses)), key=lambda i: losses[i])
        best_step = evals[best]["step"]
        info = json.loads((self.tmp / "run" / "best.json").read_text())
        self.assertEqual(info["metric"], "val_loss")
        self.assertEqual(info["step"], best_step)
        self.assertEqual(info["value"], losses[best])
        self.assertIn(f"best val_loss = {losses[best]:.6g} at step {best_step}", r.stdout)
        # A run of best_step steps saves the same weights (the same steps, bit for bit).
        self.train("short", {"train.steps": best_step, "train.save_weights": "final.h5"})
        got, want = weights(self.tmp / "run" / "best.h5"), weights(self.tmp / "short" / "final.h5")
        self.assertEqual(sorted(got), sorted(want))
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    def test_stops_after_patience_evaluations_without_improvement(self):
        # min_delta larger than any change: only the first evaluation (step 2) improves; patience 3 stops at step 8.
        sets = {"train.early_stop_metric": "val_loss", "train.early_stop_patience": 3,
                "train.early_stop_min_delta": 100.0, "train.save_weights": "final.h5"}
        r = self.train("run", sets)
        self.assertIn("early stopping: no improvement of val_loss in 3 evaluations: stopping after step 8 of 24",
                      r.stdout)
        steps, evals = read_metrics(self.tmp / "run" / "metrics.jsonl")
        self.assertEqual(steps[-1]["step"], 8)
        self.assertEqual([e["step"] for e in evals], [2, 4, 6, 8])
        self.assertEqual(json.loads((self.tmp / "run" / "best.json").read_text())["step"], 2)
        self.assertTrue((self.tmp / "run" / "final.h5").exists())
        self.assertEqual(json.loads((self.tmp / "run" / "status.json").read_text())["state"], "complete")
        # Resuming the stopped run trains no further.
        r = self.train("run", sets, resume="auto")
        self.assertIn("early stopping: this run stopped at step 8", r.stdout)
        self.assertEqual(read_metrics(self.tmp / "run" / "metrics.jsonl")[0][-1]["step"], 8)

    def test_a_resumed_run_stops_where_the_uninterrupted_one_did(self):
        sets = {"train.early_stop_metric": "val_loss", "train.early_stop_patience": 3,
                "train.early_stop_min_delta": 100.0}
        self.train("whole", sets)
        # Interrupted after step 4 (one evaluation without improvement so far), then resumed to the end.
        self.train("parts", dict(sets, **{"train.steps": 4}))
        r = self.train("parts", sets, resume="auto")
        self.assertIn("checkpoint: resumed from", r.stdout)
        self.assertIn("stopping after step 8 of 24", r.stdout)
        whole, parts = read_metrics(self.tmp / "whole" / "metrics.jsonl"), read_metrics(self.tmp / "parts" /
                                                                                        "metrics.jsonl")
        self.assertEqual([s["loss"] for s in parts[0]], [s["loss"] for s in whole[0]])
        np.testing.assert_array_equal(weights(self.tmp / "parts" / "best.h5")["wte"],
                                      weights(self.tmp / "whole" / "best.h5")["wte"])

    def test_bad_settings_are_refused_before_training(self):
        cases = [
            ({"train.early_stop_metric": "val_accuracy"},
             "train.early_stop_metric = 'val_accuracy': expected val_loss for model.kind = gpt"),
            ({"train.early_stop_metric": "val_loss", "train.eval_every": 0},
             "train.early_stop_metric = 'val_loss' needs train.eval_every > 0"),
            ({"train.early_stop_patience": 2}, "train.early_stop_patience = 2 needs train.early_stop_metric"),
            ({"train.early_stop_metric": "val_loss", "train.early_stop_min_delta": -1.0},
             "train.early_stop_min_delta = -1: expected >= 0"),
        ]
        for sets, message in cases:
            with self.subTest(message=message):
                r = self.train("bad", sets, expect_ok=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(message, r.stderr)
                self.assertFalse((self.tmp / "bad" / "metrics.jsonl").exists())


if __name__ == "__main__":
    unittest.main()
