#!/usr/bin/python3
"""Successive halving and Hyperband (`jobs/sweep.py halving | hyperband`, train.stop_after; docs/training.md): trials
pause at each rung with an evaluation and a checkpoint, the best 1/eta resume from their checkpoints to the next rung,
a trial paused and resumed rung by rung equals the same configuration trained straight through, the ranking follows
the scores, Hyperband's brackets have their sizes and fresh trials, and the best config is written out.

Run: /usr/bin/python3 tests/e2e/test_halving.py [-v]
"""
import json
import re
import subprocess
import sys
import tomllib
import unittest

from test_cli import REPO, STRATA, StrataTestCase, read_metrics, run_strata, text_dataset, write_config

GPT = {
    "model.n_layer": 1, "model.n_head": 2, "model.d_model": 16, "model.vocab_size": 258, "model.seq_len": 16,
    "train.batch_size": 4, "train.warmup_steps": 2, "train.eval_batches": 2, "train.log_every": 100,
    "train.lr_schedule": "cosine",
}


class HalvingTest(StrataTestCase):
    def test_rungs_promotion_and_exact_resume(self):
        data = text_dataset(self.tmp)
        config = write_config(self.tmp / "gpt.toml", dict(GPT, **{"data.path": data}))
        out = self.tmp / "sh"
        # Four learning rates, one too small to learn in 4 steps: it must drop out at the first rung.
        r = subprocess.run([sys.executable, str(REPO / "jobs" / "sweep.py"), "halving",
                            "train.lr=1e-4,3e-3,1e-2,3e-2", "--config", str(config), "--dir", str(out), "--trials", "4",
                            "--min-steps", "4", "--max-steps", "16", "--eta", "2", "--strata", STRATA, "--progress"],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Progress over the planned steps (4 x 4 + 2 x 4 + 1 x 8 = 32), after every trial-rung, with an ETA.
        done = [int(d) for d in re.findall(r"halving: (\d+) of 32 steps \(\d+%\), \S+ elapsed, ETA \S+", r.stderr)]
        self.assertEqual(done, [4, 8, 12, 16, 20, 24, 32], r.stderr)
        result = json.loads((out / "halving.json").read_text())
        self.assertEqual(result["rungs"], [4, 8, 16])
        reached = {t["trial"]: t["reached"] for t in result["trials"]}
        self.assertEqual(sorted(reached.values()), [4, 4, 8, 16])
        self.assertEqual(reached[0], 4, "lr 1e-4 should not be promoted")
        # Each promotion took the best of its rung.
        for budget, next_budget in ((4, 8), (8, 16)):
            at = [t for t in result["trials"] if str(budget) in t["scores"]]
            promoted = [t for t in at if str(next_budget) in t["scores"]]
            cut = [t for t in at if str(next_budget) not in t["scores"]]
            self.assertLessEqual(max(t["scores"][str(budget)] for t in promoted),
                                 min(t["scores"][str(budget)] for t in cut))
        winner = result["trials"][0]
        self.assertEqual(winner["reached"], 16)
        self.assertIn("best: trial", r.stdout)
        with open(out / "best-config.toml", "rb") as f:
            best = tomllib.load(f)
        self.assertEqual(best["train"]["lr"], float(winner["sets"][0].split("=")[1]))
        self.assertEqual(best["train"]["steps"], 16)
        # The winner, paused at 4 and 8 and resumed, equals its configuration trained straight to 16.
        straight = self.tmp / "straight"
        self.check_ok(run_strata("train", "--config", config, "--set", f"train.out_dir={straight}", "--set",
                                 "train.steps=16", "--set", winner["sets"][0]))
        got = read_metrics(out / f"trial-{winner['trial']}" / "metrics.jsonl")[0]
        want = read_metrics(straight / "metrics.jsonl")[0]
        self.assertEqual([s["step"] for s in got], list(range(1, 17)))
        self.assertEqual([s["loss"] for s in got], [s["loss"] for s in want])
        self.assertAlmostEqual(winner["scores"]["16"], read_metrics(straight / "metrics.jsonl")[1][-1]["val_loss"],
                               places=12)

    def test_cross_validated_trials(self):
        """--cv K: a trial is K fold runs paused and resumed together, scored by the folds' mean validation loss."""
        import numpy as np
        rng = np.random.default_rng(4)
        x = rng.normal(size=(120, 1, 6, 6)).astype(np.float32)
        y = rng.integers(0, 3, size=120)
        for i, c in enumerate(y):
            x[i, 0, c * 2:c * 2 + 2, :] += 1.5
        data = self.images_dataset("images", x, y, val_fraction=0.2)
        config = write_config(self.tmp / "cnn.toml", {
            "model.kind": "cnn", "model.channels": [4], "model.norm_groups": 2, "model.hidden": 8, "data.path": data,
            "train.batch_size": 8, "train.warmup_steps": 0, "train.lr_schedule": "constant", "train.min_lr": 0.0,
            "train.eval_batches": 0,
            "train.log_every": 100})
        out = self.tmp / "cv"
        r = subprocess.run([sys.executable, str(REPO / "jobs" / "sweep.py"), "halving", "train.lr=1e-4,1e-2,3e-2",
                            "--config", str(config), "--dir", str(out), "--trials", "3", "--min-steps", "4",
                            "--max-steps", "8", "--eta", "2", "--cv", "2", "--strata", STRATA],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("mean val loss over 2 folds", r.stdout)
        result = json.loads((out / "halving.json").read_text())
        self.assertEqual((result["rungs"], result["cv_folds"]), ([4, 8], 2))
        for t in result["trials"]:
            for budget, score in t["scores"].items():
                folds = [read_metrics(out / f"trial-{t['trial']}" / f"fold-{f}" / "metrics.jsonl")[1] for f in (0, 1)]
                fold_scores = [[e["val_loss"] for e in evals if e["step"] <= int(budget)][-1] for evals in folds]
                self.assertEqual(t["fold_scores"][budget], fold_scores)
                self.assertAlmostEqual(score, np.mean(fold_scores), places=12)
                self.assertAlmostEqual(t["std"][budget], np.std(fold_scores), places=12)
                self.assertNotEqual(fold_scores[0], fold_scores[1])  # each fold validates on its own held-out part
        reached = {t["trial"]: t["reached"] for t in result["trials"]}
        self.assertEqual(reached[0], 4, "lr 1e-4 should not be promoted")
        self.assertEqual(sorted(reached.values()), [4, 8, 8])  # ceil(3 / 2) promoted
        with open(out / "best-config.toml", "rb") as f:
            best = tomllib.load(f)
        self.assertEqual(best["data"]["cv_folds"], 0)  # the winner's configuration, for the whole train split
        self.assertEqual(best["train"]["lr"], float(result["trials"][0]["sets"][0].split("=")[1]))

    def test_hyperband_brackets(self):
        data = text_dataset(self.tmp)
        config = write_config(self.tmp / "gpt.toml", dict(GPT, **{"data.path": data}))
        out = self.tmp / "hb"
        r = subprocess.run([sys.executable, str(REPO / "jobs" / "sweep.py"), "hyperband", "train.lr=loguniform:1e-4:3e-2",
                            "--config", str(config), "--dir", str(out), "--min-steps", "4", "--max-steps", "16",
                            "--eta", "2", "--strata", STRATA], capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        result = json.loads((out / "hyperband.json").read_text())
        # s_max = 2 at eta 2 from 4 to 16 steps: brackets of 4 trials from 4 steps, 3 from 8, 3 from 16.
        self.assertEqual([(b["bracket"], b["trials"], b["min_steps"]) for b in result["brackets"]],
                         [(2, 4, 4), (1, 3, 8), (0, 3, 16)])
        trials = []
        for b in result["brackets"]:
            h = json.loads((out / f"bracket-{b['bracket']}" / "halving.json").read_text())
            self.assertEqual(h["rungs"][-1], 16)
            trials += [t["trial"] for t in h["trials"]]
            self.assertEqual(b["winner"]["reached"], 16)
        self.assertEqual(sorted(trials), list(range(10)))  # fresh draws in every bracket
        winners = {b["bracket"]: b["winner"]["scores"]["16"] for b in result["brackets"]}
        self.assertEqual(result["best_bracket"], min(winners, key=winners.get))
        best = next(b for b in result["brackets"] if b["bracket"] == result["best_bracket"])["winner"]
        with open(out / "best-config.toml", "rb") as f:
            self.assertEqual(tomllib.load(f)["train"]["lr"], float(best["sets"][0].split("=")[1]))
        bad = subprocess.run([sys.executable, str(REPO / "jobs" / "sweep.py"), "hyperband", "train.lr=1e-3,1e-2",
                              "--config", str(config), "--dir", str(out / "bad"), "--min-steps", "4", "--max-steps",
                              "16"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("needs random keys", bad.stderr)


if __name__ == "__main__":
    unittest.main()
