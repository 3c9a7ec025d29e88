#!/usr/bin/python3
"""End-to-end tests of the classifiers (model.kind = cnn | lstm) on `images` and `sequences` datasets built with
NumPy + `strata preprocess`: layout independence (dp, ZeRO-1, pp with both schedules, dp x pp; augmentation too),
exact and cross-layout restart from checkpoints, `strata eval` metrics against scikit-learn, configuration errors
named before training, the digits recipes reaching their accuracy, and jobs/train.sbatch run locally.

Run: /usr/bin/python3 tests/e2e/test_classifiers.py [-v] [TestClass.test_name]
"""
import csv
import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

import h5py
import numpy as np
from sklearn import metrics as skm

from test_cli import REPO, STRATA, StrataTestCase, read_metrics, run_strata, write_config
from test_datasets import MPI_ENV, MPIEXEC

STRATA = os.path.abspath(STRATA)  # the recipes run in other directories

REL_TOL = 1e-5  # float32 reductions in another order are the only allowed difference between layouts
STEPS = 16
N_SAMPLES = 203  # val 41 = 5 batches of 8 + 1: a partial last batch

# Tiny models: three conv blocks / recurrent layers, so that pp goes up to 3.
CNN = {"model.kind": "cnn", "model.channels": [4, 6, 4], "model.norm_groups": 2, "model.hidden": 8}
LSTM = {"model.kind": "lstm", "model.cell": "lstm", "model.n_layer": 3, "model.hidden_size": 8}
GRU = {"model.kind": "lstm", "model.cell": "gru", "model.n_layer": 3, "model.hidden_size": 8}
TRAIN = {
    "data.shuffle": True, "train.batch_size": 8, "train.steps": STEPS, "train.lr": 2e-2, "train.warmup_steps": 2,
    "train.lr_schedule": "constant",
    "train.eval_every": 8, "train.eval_batches": 0, "train.log_every": 100, "train.save_weights": "weights.h5",
}

# Every layout is compared with the one-rank run. Microbatches of 2: 4 per step on a pipeline.
LAYOUTS = {
    "dp2": {"parallel.dp": 2},
    "dp2-zero1": {"parallel.dp": 2, "parallel.zero1": True},
    "pp2-1f1b": {"parallel.pp": 2, "parallel.schedule": "1f1b", "train.micro_batch_size": 2},
    "pp3-gpipe": {"parallel.pp": 3, "parallel.schedule": "gpipe", "train.micro_batch_size": 2},
    "dp2xpp2": {"parallel.dp": 2, "parallel.pp": 2, "train.micro_batch_size": 2},
}
# The CNN also splits its channels over tensor-parallel ranks (blocks 0 and 2 column-parallel, block 1 row-parallel,
# the head row-parallel after the column-parallel last block).
TP_LAYOUTS = {
    "tp2": {"parallel.tp": 2},
    "dp2xtp2-zero1": {"parallel.dp": 2, "parallel.tp": 2, "parallel.zero1": True},
    "tp2xpp2": {"parallel.tp": 2, "parallel.pp": 2, "train.micro_batch_size": 2},
}

# Dropout (train.dropout) at every classifier site: its masks follow the sample's place in the global batch and the
# element's in the whole sample, so every layout and a resumed run draw the one-rank masks.
DROPOUT = {"train.dropout": 0.2}

DATA = {}  # kind -> dataset directory, built once by setUpModule
_data_tmp = None


def preprocess(kind, name, x, y, shards=2):
    """Writes x, y as .npy and runs `strata preprocess KIND`; returns the dataset directory."""
    root = Path(_data_tmp.name)
    np.save(root / f"{name}-x.npy", x)
    np.save(root / f"{name}-y.npy", y)
    out = root / name
    r = run_strata("preprocess", kind, "--x", root / f"{name}-x.npy", "--y", root / f"{name}-y.npy", "-o", out,
                   "--shards", shards, "--val-fraction", 0.2, "--quiet")
    assert r.returncode == 0, f"preprocess {kind} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return str(out)


def setUpModule():
    global _data_tmp
    _data_tmp = tempfile.TemporaryDirectory(prefix="strata-e2e-cls-")
    rng = np.random.default_rng(1)
    # Images [2, 10, 10], 4 classes: the class is the quadrant of channel 0 that is brighter.
    x = rng.normal(size=(N_SAMPLES, 2, 10, 10)).astype(np.float32)
    y = rng.integers(0, 4, size=N_SAMPLES)
    for i, q in enumerate(y):
        x[i, 0, (q // 2) * 5:(q // 2) * 5 + 5, (q % 2) * 5:(q % 2) * 5 + 5] += 3.0
    DATA["images"] = preprocess("images", "images", x, y.astype(np.int64))
    # Sequences [6, 3], one label per sequence (4 classes): its two bits shift features 0 and 1 at every step.
    s = rng.normal(size=(N_SAMPLES, 6, 3)).astype(np.float32)
    y = rng.integers(0, 4, size=N_SAMPLES)
    s[:, :, 0] += np.where(y & 1, 1.5, -1.5)[:, None]
    s[:, :, 1] += np.where(y >> 1, 1.5, -1.5)[:, None]
    DATA["sequences"] = preprocess("sequences", "sequences", s, y.astype(np.int32))
    # Sequences [6, 3], one label per step [N, 6] (3 classes): the step's label raises that feature.
    y = rng.integers(0, 3, size=(N_SAMPLES, 6))
    p = (rng.normal(size=(N_SAMPLES, 6, 3)) + 2.0 * np.eye(3)[y]).astype(np.float32)
    DATA["steps"] = preprocess("sequences", "steps", p, y.astype(np.int32), shards=3)
    # Images [1, 4, 4]: too small for three 2x2 max-pool blocks.
    DATA["small"] = preprocess("images", "small", rng.normal(size=(40, 1, 4, 4)).astype(np.float32),
                               rng.integers(0, 4, size=40))


def tearDownModule():
    _data_tmp.cleanup()


def ranks_of(values):
    return values.get("parallel.dp", 1) * values.get("parallel.tp", 1) * values.get("parallel.pp", 1)


class ClassifierTestCase(StrataTestCase):
    def run_train(self, name, model, data, values=(), resume=None, env=None, expect_ok=True, ranks=None):
        """Trains MODEL (dict) on DATA (a DATA key) with TRAIN and VALUES under mpiexec; returns the process."""
        values = dict(TRAIN, **model, **dict(values), **{"data.path": DATA[data],
                                                         "train.out_dir": str(self.tmp / name)})
        cfg = write_config(self.tmp / f"{name}-{len(list(self.tmp.glob('*.toml')))}.toml", values)
        args = [STRATA, "train", "--config", cfg] + (["--resume", resume] if resume else [])
        r = subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(ranks or ranks_of(values)), *args],
                           env=dict(MPI_ENV, **(env or {})), capture_output=True, text=True, errors="replace",
                           timeout=300)
        if expect_ok:
            self.check_ok(r)
        return r

    def result(self, name):
        out = self.tmp / name
        steps, evals = read_metrics(out / "metrics.jsonl")
        self.assertEqual([s["step"] for s in steps], list(range(1, len(steps) + 1)), "steps missing or repeated")
        with h5py.File(out / "weights.h5", "r") as f:
            weights = {k: f[k][...] for k in f.keys()}
        return dict(steps=steps, evals=evals, weights=weights)

    def assert_same_run(self, run, ref, exact=False):
        self.assertEqual(len(run["steps"]), len(ref["steps"]))
        for a, b in zip(run["steps"], ref["steps"]):
            if exact:
                self.assertEqual((a["loss"], a["grad_norm"]), (b["loss"], b["grad_norm"]), f"step {a['step']}")
            else:
                self.assertAlmostEqual(a["loss"] / b["loss"], 1.0, delta=REL_TOL, msg=f"loss at step {a['step']}")
                self.assertAlmostEqual(a["grad_norm"] / b["grad_norm"], 1.0, delta=10 * REL_TOL,
                                       msg=f"grad norm at step {a['step']}")
        self.assertEqual([e["step"] for e in run["evals"]], [e["step"] for e in ref["evals"]])
        for a, b in zip(run["evals"], ref["evals"]):
            self.assertEqual(a["val_accuracy"], b["val_accuracy"], f"val accuracy at step {a['step']}")
            self.assertEqual(a["val_rows"], b["val_rows"])
            if exact:
                self.assertEqual(a, b)
            else:
                self.assertAlmostEqual(a["val_loss"] / b["val_loss"], 1.0, delta=REL_TOL,
                                       msg=f"val loss at step {a['step']}")
        self.assertEqual(sorted(run["weights"]), sorted(ref["weights"]))
        for name, w in ref["weights"].items():
            v = run["weights"][name]
            self.assertEqual(v.shape, w.shape, name)
            if exact:
                np.testing.assert_array_equal(v, w, err_msg=f"final weights of {name}")
            else:
                w, v = w.astype(np.float64), v.astype(np.float64)
                err = np.linalg.norm(v - w) / max(np.linalg.norm(w), 1e-30)
                self.assertLess(err, REL_TOL, f"final weights of {name}: relative L2 {err:.3g}")


class LayoutTest(ClassifierTestCase):
    """The one-rank run against dp 2, dp 2 + ZeRO-1, pp 2 (1F1B), pp 3 (GPipe) and dp 2 x pp 2."""

    def check_layouts(self, model, data, classes, rows, layouts=LAYOUTS):
        self.run_train("ref", model, data)
        ref = self.result("ref")
        # The runs must learn (identical runs that learn nothing would match trivially).
        self.assertLess(ref["evals"][-1]["val_loss"], ref["steps"][0]["loss"] - 0.1, ref["evals"])
        self.assertGreater(ref["evals"][-1]["val_accuracy"], 1.5 / classes, ref["evals"])
        self.assertEqual([e["step"] for e in ref["evals"]], [8, 16])  # validation mid-run and at the end
        self.assertEqual(ref["evals"][-1]["val_rows"], rows)  # the whole val split: 41 samples (x 6 steps)
        for name, values in layouts.items():
            with self.subTest(layout=name):
                r = self.run_train(name, model, data, values)
                pp = values.get("parallel.pp", 1)
                self.assertIn(f"layout dp {values.get('parallel.dp', 1)} x tp {values.get('parallel.tp', 1)} x pp {pp}",
                              r.stdout)
                if values.get("parallel.zero1"):
                    self.assertIn("ZeRO-1", r.stdout)
                if pp > 1:
                    self.assertRegex(r.stdout, r"pipeline: layers per stage" + r" \d+" * pp + " ")
                self.assert_same_run(self.result(name), ref)

    # Found by this test: validation on a later pipeline stage once checked the samples against the stage's input.
    def test_cnn(self):
        self.check_layouts(CNN, "images", 4, rows=41, layouts={**LAYOUTS, **TP_LAYOUTS})

    def test_lstm_sequence_labels(self):
        self.check_layouts(LSTM, "sequences", 4, rows=41)

    def test_gru_step_labels(self):
        self.check_layouts(GRU, "steps", 3, rows=41 * 6)

    def test_cnn_dropout(self):  # flattened features split over tp ranks by channel, the hidden layer replicated
        self.check_layouts(dict(CNN, **{"train.dropout": 0.1}), "images", 4, rows=41,
                           layouts={k: v for k, v in {**LAYOUTS, **TP_LAYOUTS}.items() if k != "pp3-gpipe"})

    def test_lstm_dropout(self):  # each layer's states, across pipeline stages
        self.check_layouts(dict(LSTM, **DROPOUT), "sequences", 4, rows=41)

    def test_gru_step_labels_dropout(self):
        self.check_layouts(dict(GRU, **DROPOUT), "steps", 3, rows=41 * 6,
                           layouts={k: LAYOUTS[k] for k in ("dp2", "pp2-1f1b")})

    def test_cnn_augmentation_is_layout_independent(self):
        aug = {"data.crop_padding": 1, "data.flip": True}
        self.run_train("plain", CNN, "images")
        self.run_train("aug1", CNN, "images", aug)
        self.run_train("aug2", CNN, "images", dict(aug, **{"parallel.dp": 2}))
        plain, aug1 = self.result("plain"), self.result("aug1")
        # Augmentation changed the batches (from the first step on)...
        self.assertNotEqual(plain["steps"][0]["loss"], aug1["steps"][0]["loss"])
        # ...identically on every layout: it is keyed by the sample's global position.
        self.assert_same_run(self.result("aug2"), aug1)


class ResumeTest(ClassifierTestCase):
    """An uninterrupted 16-step run with checkpoint.every = 8 against an 8-step run resumed (`--resume auto`) to 16
    steps, on the same layout, and against a run killed (SIGKILL) while writing its step-16 checkpoint and resumed on
    another layout. TRAIN's learning rate is constant after warm-up: an 8-step run is the first half of a 16-step
    one (a cosine schedule depends on train.steps)."""

    CKPT = {"checkpoint.every": 8}

    def resumed_line(self, r):
        self.assertIn("checkpoint: resumed from", r.stdout)
        self.assertIn("step-00000008.h5 (step 8", r.stdout)

    def check_same_layout(self, model, data):
        dp2 = dict(self.CKPT, **{"parallel.dp": 2})
        self.run_train("whole", model, data, dp2)
        self.run_train("cut", model, data, dict(dp2, **{"train.steps": 8}))
        self.assertEqual(len(read_metrics(self.tmp / "cut" / "metrics.jsonl")[0]), 8)
        self.resumed_line(self.run_train("cut", model, data, dp2, resume="auto"))
        self.assert_same_run(self.result("cut"), self.result("whole"), exact=True)

    # Found by this test: checkpoints of rank-4 convolution weights once could not be loaded (ckpt/tensor_slab).
    def test_cnn_same_layout_is_bit_identical(self):
        self.check_same_layout(CNN, "images")

    def test_gru_same_layout_is_bit_identical(self):
        self.check_same_layout(GRU, "steps")

    def test_cnn_dropout_same_layout_is_bit_identical(self):  # the masks of steps 9..16 are drawn again on resume
        self.check_same_layout(dict(CNN, **DROPOUT), "images")

    def interrupted(self, name, model, data, first, second):
        r = self.run_train(name, model, data, dict(self.CKPT, **first), env={"STRATA_CRASH_AT": "write:16:-1"},
                           expect_ok=False)
        self.assertNotEqual(r.returncode, 0, "the injected crash did not happen")
        self.assertEqual(len(read_metrics(self.tmp / name / "metrics.jsonl")[0]), STEPS,
                         "the first run did not reach its step-16 save")
        r = self.run_train(name, model, data, dict(self.CKPT, **second), resume="auto")
        self.resumed_line(r)
        return r

    def check_other_layout(self, model, data, first, second):
        self.run_train("whole", model, data, dict(self.CKPT, **first))
        r = self.interrupted("cut", model, data, first, second)
        self.assertIn(f"layout dp {second.get('parallel.dp', 1)} x tp 1 x pp {second.get('parallel.pp', 1)}", r.stdout)
        self.assert_same_run(self.result("cut"), self.result("whole"))

    def test_cnn_dp2_zero1_to_pp2(self):
        self.check_other_layout(CNN, "images", LAYOUTS["dp2-zero1"], LAYOUTS["pp2-1f1b"])

    def test_cnn_tp2_to_dp2_zero1(self):  # conv weights split by output and by input channels, written and read
        self.check_other_layout(CNN, "images", TP_LAYOUTS["tp2"], LAYOUTS["dp2-zero1"])

    def test_lstm_pp2_to_dp2_zero1(self):
        self.check_other_layout(LSTM, "sequences", LAYOUTS["pp2-1f1b"], LAYOUTS["dp2-zero1"])

    def test_lstm_dropout_pp2_to_dp2_zero1(self):
        self.check_other_layout(dict(LSTM, **DROPOUT), "sequences", LAYOUTS["pp2-1f1b"], LAYOUTS["dp2-zero1"])


class EvalMetricsTest(ClassifierTestCase):
    """`strata eval` on the whole val split against scikit-learn on its --predictions file."""

    def run_eval(self, name, ranks):
        out = self.tmp / "train"
        args = [STRATA, "eval", "--config", out / "config.toml", "--weights", out / "weights.h5", "--set",
                "train.eval_batches=0", "--set", f"parallel.dp={ranks}", "--metrics-json", self.tmp / f"{name}.json",
                "--predictions", self.tmp / f"{name}.h5"]
        r = subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(ranks), *map(str, args)], env=MPI_ENV,
                           capture_output=True, text=True, errors="replace", timeout=300)
        self.check_ok(r)
        with h5py.File(self.tmp / f"{name}.h5", "r") as f:
            pred = {k: f[k][...] for k in ("y_true", "y_pred", "scores")}
        return json.loads((self.tmp / f"{name}.json").read_text()), pred, r.stdout

    def test_metrics_match_sklearn(self):
        self.run_train("train", CNN, "images")
        _, evals = read_metrics(self.tmp / "train" / "metrics.jsonl")
        m, pred, stdout = self.run_eval("eval1", 1)
        C = 4
        labels = list(range(C))
        y_true, y_pred, scores = pred["y_true"], pred["y_pred"], pred["scores"]
        val_shards = json.loads((Path(DATA["images"]) / "manifest.json").read_text())["splits"]["val"]
        n_val = sum(s["samples"] for s in val_shards)
        self.assertEqual(n_val, 41)
        # Every val row exactly once (41 = 5 batches of 8 + a partial batch of 1).
        self.assertEqual(m["rows"], n_val)
        self.assertEqual(y_true.shape, (n_val,))
        self.assertEqual(y_pred.shape, (n_val,))
        self.assertEqual(scores.shape, (n_val, C))
        self.assertEqual(evals[-1]["val_rows"], n_val)
        # The predictions file holds the val split's labels in order.
        want = []
        for shard in val_shards:
            with h5py.File(Path(DATA["images"]) / shard["file"], "r") as f:
                want.append(f["y"][...])
        np.testing.assert_array_equal(y_true, np.concatenate(want))
        np.testing.assert_array_equal(y_pred, np.argmax(scores, axis=1))

        tol = 1e-12
        self.assertAlmostEqual(m["accuracy"], skm.accuracy_score(y_true, y_pred), delta=tol)
        self.assertAlmostEqual(m["top_k"]["1"], skm.accuracy_score(y_true, y_pred), delta=tol)
        self.assertAlmostEqual(m["top_k"]["3"], skm.top_k_accuracy_score(y_true, scores, k=3, labels=labels),
                               delta=tol)
        p, r, f1, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                          zero_division=0)
        self.assertEqual([c["class"] for c in m["per_class"]], labels)
        for c in labels:
            got = m["per_class"][c]
            with self.subTest(cls=c):
                self.assertAlmostEqual(got["precision"], p[c], delta=tol)
                self.assertAlmostEqual(got["recall"], r[c], delta=tol)
                self.assertAlmostEqual(got["f1"], f1[c], delta=tol)
                self.assertEqual(got["support"], s[c])
        for avg in ("macro", "micro", "weighted"):
            p, r, f1, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg,
                                                              zero_division=0)
            with self.subTest(average=avg):
                self.assertAlmostEqual(m[avg]["precision"], p, delta=tol)
                self.assertAlmostEqual(m[avg]["recall"], r, delta=tol)
                self.assertAlmostEqual(m[avg]["f1"], f1, delta=tol)
                self.assertEqual(m[avg]["support"], n_val)
        self.assertEqual(m["confusion"], skm.confusion_matrix(y_true, y_pred, labels=labels).tolist())
        # Cross-entropy of the logits.
        logp = scores.astype(np.float64) - np.log(np.exp(scores.astype(np.float64)).sum(1, keepdims=True))
        self.assertAlmostEqual(m["loss"], -logp[np.arange(n_val), y_true].mean(), delta=1e-5 * m["loss"])

        # The trainer's final validation is the same evaluation.
        self.assertEqual(m["accuracy"], evals[-1]["val_accuracy"])
        self.assertAlmostEqual(m["top_k"]["3"], evals[-1]["val_top3"], delta=tol)
        self.assertAlmostEqual(m["macro"]["f1"], evals[-1]["val_macro_f1"], delta=tol)
        self.assertAlmostEqual(m["weighted"]["f1"], evals[-1]["val_weighted_f1"], delta=tol)
        self.assertAlmostEqual(m["loss"], evals[-1]["val_loss"], delta=1e-5 * m["loss"])
        self.assertIn(f"{n_val}", stdout)

        # Two ranks: the same metrics and predictions. Only the loss may differ in float32 rounding: its per-chunk
        # sums run over microbatches of 4 instead of 8.
        m2, pred2, _ = self.run_eval("eval2", 2)
        self.assertAlmostEqual(m2.pop("loss") / m.pop("loss"), 1.0, delta=1e-6)
        self.assertEqual(m2, m)
        np.testing.assert_array_equal(pred2["y_true"], pred["y_true"])
        np.testing.assert_array_equal(pred2["y_pred"], pred["y_pred"])
        np.testing.assert_allclose(pred2["scores"], pred["scores"], rtol=1e-5, atol=1e-6)


class ConfigErrorTest(ClassifierTestCase):
    """Each mistake: a non-zero exit with one error line naming the field, before any training."""

    def check_error(self, model, data, values, *needles, ranks=None):
        r = self.run_train("bad", model, data, values, expect_ok=False, ranks=ranks)
        self.assertNotEqual(r.returncode, 0, r.stdout[-2000:])
        # Every rank reports the same line, tagged " [rank R, FILE:LINE]".
        errors = sorted({re.sub(r" \[rank \d+, [^]]*\]$", "", l) for l in r.stderr.splitlines()
                         if l.startswith("strata: error:")})
        self.assertEqual(len(errors), 1, f"expected one error line:\n{r.stderr[-3000:]}")
        if os.environ.get("STRATA_E2E_SHOW_ERRORS"):
            print("\n   ", errors[0])
        for n in needles:
            self.assertIn(n, errors[0])
        self.assertNotRegex(r.stdout, r"(?m)^step ", "training started")
        self.assertFalse((self.tmp / "bad" / "metrics.jsonl").exists(), "training started")
        return errors[0]

    def test_cnn_on_a_sequences_dataset(self):
        self.check_error(CNN, "sequences", {}, "model.kind", "cnn", "sequences")

    def test_num_classes_mismatch(self):
        self.check_error(CNN, "images", {"model.num_classes": 5}, "model.num_classes", "5", "4")

    def test_input_shape_mismatch(self):
        self.check_error(CNN, "images", {"model.input_shape": [2, 8, 8]}, "model.input_shape")

    def test_lstm_input_shape_mismatch(self):
        self.check_error(LSTM, "sequences", {"model.input_shape": [6, 4]}, "model.input_shape")

    def test_tensor_parallel_cnn_channels_that_do_not_split(self):
        self.check_error(CNN, "images", {"parallel.tp": 3}, "parallel.tp = 3: model.channels = [4, 6, 4]")

    def test_tensor_parallel_lstm(self):
        self.check_error(LSTM, "sequences", {"parallel.tp": 2}, "parallel.tp")

    def test_more_stages_than_conv_blocks(self):
        self.check_error(CNN, "images", {"parallel.pp": 4, "train.micro_batch_size": 2}, "parallel.pp", "4")

    def test_more_stages_than_recurrent_layers(self):
        self.check_error(LSTM, "sequences", {"parallel.pp": 4, "train.micro_batch_size": 2}, "parallel.pp", "4")

    def test_gpt_field_in_a_cnn_config(self):
        self.check_error(CNN, "images", {"model.n_head": 2}, "model.n_head", "cnn")

    def test_image_too_small_for_the_conv_blocks(self):
        self.check_error(CNN, "small", {}, "model.input_shape = [1, 4, 4]", "model.pool_size")


class RecipeTest(StrataTestCase):
    """The real recipes and configs, once each; jobs/train.sbatch without Slurm."""

    @classmethod
    def setUpClass(cls):
        cls._recipes = tempfile.TemporaryDirectory(prefix="strata-e2e-recipes-")
        cls.built = {}

    @classmethod
    def tearDownClass(cls):
        cls._recipes.cleanup()

    def recipe(self, script):
        """Runs data/SCRIPT once per class; returns the dataset directory."""
        if script not in self.built:
            out = Path(self._recipes.name) / script.removesuffix(".sh")
            r = subprocess.run(["bash", str(REPO / "data" / script), str(out), STRATA], cwd=self._recipes.name,
                               env=MPI_ENV, capture_output=True, text=True, timeout=300)
            self.check_ok(r)
            self.built[script] = out
        return self.built[script]

    def final_accuracy(self, r, out_dir):
        m = re.search(r"^done: .*val accuracy ([0-9.]+)", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout[-2000:])
        _, evals = read_metrics(out_dir / "metrics.jsonl")
        self.assertAlmostEqual(float(m.group(1)), evals[-1]["val_accuracy"], delta=1e-4)
        return evals[-1]["val_accuracy"]

    def test_digits_cnn_recipe(self):
        data = self.recipe("digits.sh")
        r = run_strata("train", "--config", REPO / "jobs" / "configs" / "digits_cnn.toml", "--set",
                       f"data.path={data}", "--set", f"train.out_dir={self.tmp / 'run'}")
        self.check_ok(r)
        self.assertGreaterEqual(self.final_accuracy(r, self.tmp / "run"), 0.97)

    def test_digit_rows_lstm_recipe(self):
        data = self.recipe("digit_rows.sh")
        r = run_strata("train", "--config", REPO / "jobs" / "configs" / "digit_rows_lstm.toml", "--set",
                       f"data.path={data}", "--set", f"train.out_dir={self.tmp / 'run'}")
        self.check_ok(r)
        self.assertGreaterEqual(self.final_accuracy(r, self.tmp / "run"), 0.9)

    def test_train_sbatch_locally(self):
        data = self.recipe("digits.sh")
        out = self.tmp / "job"
        env = dict(MPI_ENV, STRATA_BIN=STRATA, STRATA_OUT=str(out), STRATA_RANKS="2")
        env.pop("SLURM_JOB_ID", None)
        r = subprocess.run(["bash", "jobs/train.sbatch", "jobs/configs/digits_cnn.toml", "--set", f"data.path={data}",
                            "--set", "train.steps=60", "--set", "train.eval_every=0"], cwd=REPO, env=env,
                           capture_output=True, text=True, errors="replace", timeout=300)
        self.check_ok(r)
        self.assertIn("running locally with 2 ranks", r.stdout)
        self.assertIn("layout dp 2 x tp 1 x pp 1", r.stdout)
        self.assertIn("training complete", r.stdout)
        self.assertEqual(json.loads((out / "status.json").read_text()), {"state": "complete", "step": 60})
        steps, evals = read_metrics(out / "metrics.jsonl")
        self.assertEqual(len(steps), 60)
        manifest = json.loads((data / "manifest.json").read_text())
        self.assertEqual(evals[-1]["val_rows"], sum(s["samples"] for s in manifest["splits"]["val"]))  # all of val
        self.assertTrue((out / "weights.h5").exists())
        # The scaling report (jobs/scaling.sbatch's) reads a classifier's throughput in samples/s.
        runs = self.tmp / "runs.csv"
        runs.write_text(f"ranks,nodes,mode,global_batch,run_dir\n1,1,strong,64,{out}\n2,1,strong,64,{out}\n")
        report = self.tmp / "scaling.csv"
        r = subprocess.run(["/usr/bin/python3", str(REPO / "jobs" / "scaling_report.py"), str(runs), str(report)],
                           capture_output=True, text=True)
        self.check_ok(r)
        self.assertIn("| samples/s |", r.stdout)
        with report.open() as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([float(x["efficiency"]) for x in rows], [1.0, 0.5])
        self.assertGreater(float(rows[0]["samples_per_s"]), 0)


if __name__ == "__main__":
    unittest.main()
