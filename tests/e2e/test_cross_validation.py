#!/usr/bin/python3
"""k-fold cross-validation end to end (`strata cv`, docs/training.md): the folds partition the train split (their
held-out rows add up to it), every layout trains and reports the same folds, one fold per call (a Slurm array task)
then the report equals the all-folds run, complete folds are not trained again, a language model cross-validates
too, and bad settings are refused with one line.

Run: /usr/bin/python3 tests/e2e/test_cross_validation.py [-v]
"""
import json
import re
import os
import subprocess
import unittest

import numpy as np

from test_cli import REPO, STRATA, StrataTestCase, read_metrics, run_strata, text_dataset, write_config
from test_datasets import run_ranks

N_TRAIN = 120  # images in the train split (150 with val-fraction 0.2)
CNN = {
    "model.kind": "cnn", "model.channels": [4, 4], "model.norm_groups": 2, "model.hidden": 8,
    "train.batch_size": 8, "train.steps": 30, "train.lr": 1e-2, "train.warmup_steps": 0,
    "train.lr_schedule": "constant", "train.eval_every": 15, "train.eval_batches": 0, "train.log_every": 100,
}


class CrossValidationTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(4)
        x = rng.normal(size=(150, 1, 8, 8)).astype(np.float32)
        # Three classes of unequal size (the stratified folds must hold each evenly).
        y = np.repeat([0, 0, 0, 1, 1, 2], 25)
        rng.shuffle(y)
        for i, c in enumerate(y):
            x[i, 0, c * 2:c * 2 + 3, :] += 2.0
        self.images = self.images_dataset("images", x, y, val_fraction=0.2)
        self.config = write_config(self.tmp / "cnn.toml", dict(CNN, **{"data.path": self.images}))

    def cv(self, out, *args, ranks=1, expect_ok=True):
        r = run_ranks(ranks, "cv", "--config", self.config, "--set", f"train.out_dir={self.tmp / out}", *args,
                      timeout=600)
        if expect_ok:
            self.check_ok(r)
        return r

    def report(self, out):
        return json.loads((self.tmp / out / "cv.json").read_text())

    def assert_same_folds(self, a, b, tol=1e-5):
        self.assertEqual(a["folds"], b["folds"])
        for fa, fb in zip(a["per_fold"], b["per_fold"]):
            self.assertEqual(sorted(fa), sorted(fb))
            for key, value in fa.items():
                self.assertAlmostEqual(value, fb[key], delta=tol * max(1.0, abs(fb[key])), msg=f"fold {fa['fold']} {key}")

    def test_folds_partition_the_train_split_at_any_layout(self):
        r = self.cv("one", "--folds", 3)
        self.assertIn("mean +- std", r.stdout)
        # Progress over the folds: elapsed and an ETA after each fold but the last.
        self.assertEqual(re.findall(r"cv: fold (\d) of 3 trained; \S+ elapsed, ETA \S+ for the (\d) fold\(s\) left",
                                    r.stdout), [("0", "2"), ("1", "1")])
        one = self.report("one")
        self.assertEqual(one["folds"], 3)
        self.assertEqual([f["fold"] for f in one["per_fold"]], [0, 1, 2])
        self.assertEqual({f["step"] for f in one["per_fold"]}, {30})
        rows = []
        for fold in range(3):
            evals = read_metrics(self.tmp / "one" / f"fold-{fold}" / "metrics.jsonl")[1]
            rows.append(evals[-1]["val_rows"])
        self.assertEqual(sum(rows), N_TRAIN)  # the held-out folds cover the train split once
        self.assertEqual(rows, [40, 40, 40])
        for key in ("val_loss", "val_accuracy", "val_macro_f1"):
            values = [f[key] for f in one["per_fold"]]
            self.assertAlmostEqual(one["mean"][key], np.mean(values), places=12)
            self.assertAlmostEqual(one["std"][key], np.std(values, ddof=1), places=12)
        self.assertGreater(one["mean"]["val_accuracy"], 0.5)  # the folds learned something
        # Data-parallel and pipeline layouts hold out the same folds and train the same models.
        for name, sets in [("dp2", ["parallel.dp=2"]), ("pp2", ["parallel.pp=2", "train.micro_batch_size=4"])]:
            with self.subTest(layout=name):
                args = ["--folds", 3]
                for s in sets:
                    args += ["--set", s]
                self.cv(name, *args, ranks=2)
                self.assert_same_folds(self.report(name), one)

    def test_one_fold_at_a_time_then_the_report(self):
        self.cv("all", "--folds", 3)
        for fold in range(2):
            r = self.cv("tasks", "--folds", 3, "--fold", fold)
            self.assertIn(f"{fold + 1} of 3 folds complete", r.stdout)
            self.assertFalse((self.tmp / "tasks" / "cv.json").exists())
        r = self.cv("tasks", "--folds", 3, "--fold", 2)  # the last fold to finish writes the report
        self.assert_same_folds(self.report("tasks"), self.report("all"), tol=0)
        # Complete folds are not trained again; --report alone rewrites the report.
        r = self.cv("tasks", "--folds", 3)
        self.assertEqual(r.stdout.count("not trained again"), 3)
        (self.tmp / "tasks" / "cv.json").unlink()
        self.cv("tasks", "--folds", 3, "--report")
        self.assert_same_folds(self.report("tasks"), self.report("all"), tol=0)

    def test_sweep_over_cross_validated_scores(self):
        # jobs/sweep.sbatch without Slurm, each trial a 2-fold cross-validation: scored by the folds' mean.
        sweep = self.tmp / "sweep"
        env = dict(os.environ, STRATA_SWEEP="train.lr=1e-3,1e-2", STRATA_SWEEP_CV="2", STRATA_SWEEP_DIR=str(sweep),
                   STRATA_BIN=STRATA)
        r = subprocess.run(["bash", str(REPO / "jobs" / "sweep.sbatch"), str(self.config)], env=env,
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertIn("mean val loss over the cross-validation folds", r.stdout)
        for i in range(2):
            trial = json.loads((sweep / f"trial-{i}.json").read_text())
            report = json.loads((sweep / f"trial-{i}" / "cv.json").read_text())
            self.assertEqual(trial["folds"], 2)
            self.assertEqual(trial["val_loss"], report["mean"]["val_loss"])
            self.assertEqual(trial["val_loss_std"], report["std"]["val_loss"])
        self.assertIn("+-", r.stdout)

    def test_language_model(self):
        data = text_dataset(self.tmp)
        self.config = write_config(self.tmp / "gpt.toml", {
            "model.n_layer": 1, "model.n_head": 2, "model.d_model": 16, "model.vocab_size": 258, "model.seq_len": 16,
            "data.path": data, "train.batch_size": 4, "train.steps": 6, "train.eval_batches": 2})
        r = self.cv("gpt", "--folds", 2)
        self.assertIn("cross-validation fold 1 of 2", r.stdout)
        report = self.report("gpt")
        self.assertEqual(sorted(report["mean"]), ["val_loss"])
        self.assertNotEqual(report["per_fold"][0]["val_loss"], report["per_fold"][1]["val_loss"])


    def test_bad_settings(self):
        self.assertIn("needs k >= 2 folds", self.mpi_error_line(self.cv("bad", "--folds", 1, expect_ok=False)))
        self.assertIn("--fold 3: expected 0 .. 2",
                      self.mpi_error_line(self.cv("bad", "--folds", 3, "--fold", 3, expect_ok=False)))
        line = self.mpi_error_line(self.cv("bad", "--folds", 3, "--report", expect_ok=False))
        self.assertIn("fold-0/metrics.jsonl", line)
        r = run_strata("train", "--config", self.config, "--set", "data.cv_folds=3", "--set", "data.cv_fold=3")
        self.assertIn("data.cv_fold = 3: expected 0 .. data.cv_folds - 1 = 2", self.mpi_error_line(r))
        r = run_strata("train", "--config", self.config, "--set", "data.cv_folds=1")
        self.assertIn("data.cv_folds = 1: expected 0 (off) or k >= 2", self.mpi_error_line(r))
        r = run_strata("train", "--config", self.config, "--set", "data.cv_folds=500")
        self.assertIn("500 folds of 120 samples", self.mpi_error_line(r))


if __name__ == "__main__":
    unittest.main()
