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

    def test_classifier_metrics_are_maximised(self):
        """A classifier stopping on val_macro_f1 or val_accuracy (higher is better): best.json holds the largest value
        the evaluations logged (the first of equal ones), and best.h5 the weights of that step."""
        rng = np.random.default_rng(6)
        x = rng.normal(size=(150, 1, 6, 6)).astype(np.float32)
        y = rng.integers(0, 3, size=150)
        for i, c in enumerate(y):
            x[i, 0, c * 2:c * 2 + 2, :] += 1.0
        data = self.images_dataset("images", x, y, val_fraction=0.3)
        cnn = {"model.kind": "cnn", "model.channels": [4], "model.norm_groups": 2, "model.hidden": 8,
               "data.path": data, "train.eval_batches": 0, "train.lr": 5e-3}
        for metric in ("val_macro_f1", "val_accuracy"):
            with self.subTest(metric=metric):
                cfg = write_config(self.tmp / f"{metric}.toml", dict(
                    {k: v for k, v in BASE.items() if not k.startswith("model.")}, **cnn,
                    **{"train.out_dir": str(self.tmp / metric), "train.early_stop_metric": metric}))
                self.check_ok(subprocess.run([STRATA, "train", "--config", cfg], capture_output=True, text=True,
                                             timeout=300))
                values = [(e[metric], e["step"]) for e in self.evals(metric)]
                best_value = max(v for v, _ in values)
                best_step = next(step for v, step in values if v == best_value)
                self.assertLess(min(v for v, _ in values), best_value, "the metric must vary for this to test")
                info = json.loads((self.tmp / metric / "best.json").read_text())
                self.assertEqual((info["metric"], info["value"], info["step"]), (metric, best_value, best_step))
                short = write_config(self.tmp / f"{metric}-short.toml", dict(
                    {k: v for k, v in BASE.items() if not k.startswith("model.")}, **cnn,
                    **{"train.out_dir": str(self.tmp / f"{metric}-short"), "train.steps": best_step,
                       "train.save_weights": "final.h5"}))
                self.check_ok(subprocess.run([STRATA, "train", "--config", short], capture_output=True, text=True,
                                             timeout=300))
                got = weights(self.tmp / metric / "best.h5")
                want = weights(self.tmp / f"{metric}-short" / "final.h5")
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
