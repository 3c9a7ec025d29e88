#!/usr/bin/python3
"""Magnitude pruning end to end (`[prune]`, docs/training.md): the gradual schedule reaches its sparsity, pruned
weights stay exactly zero to the end, the masks are stored in checkpoints, every layout prunes the same elements and
trains the same model as one rank, an interrupted run resumes exactly (also on another layout), the layer scope
prunes each tensor to the fraction, and bad settings are refused with one line.

Run: /usr/bin/python3 tests/e2e/test_pruning.py [-v]
"""
import json
import re
import unittest

import h5py
import numpy as np

from test_cli import StrataTestCase, read_metrics, run_strata, text_dataset, write_config
from test_datasets import run_ranks

TRAIN = {
    "train.batch_size": 8, "train.steps": 16, "train.lr": 1e-2, "train.warmup_steps": 0,
    "train.lr_schedule": "constant", "train.eval_every": 8, "train.eval_batches": 0, "train.log_every": 100,
    "train.save_weights": "weights.h5",
}
CNN = {"model.kind": "cnn", "model.channels": [4, 8], "model.norm_groups": 2, "model.hidden": 16}
LSTM = {"model.kind": "lstm", "model.n_layer": 2, "model.hidden_size": 12}
PRUNE = {"prune.sparsity": 0.6, "prune.initial_sparsity": 0.1, "prune.start_step": 2, "prune.end_step": 11,
         "prune.every": 3}


def zeroed_copy(weights, out, zero):
    """A copy of the weights file WEIGHTS (attributes and tensors) as OUT, with zero(file) applied to it."""
    with h5py.File(weights, "r") as src, h5py.File(out, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src.keys():
            dst[k] = src[k][...]
        zero(dst)


class PruningTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(5)
        x = rng.normal(size=(160, 1, 8, 8)).astype(np.float32)
        y = rng.integers(0, 3, size=160)
        for i, c in enumerate(y):
            x[i, 0, c * 2:c * 2 + 3, :] += 1.5
        self.images = self.images_dataset("images", x, y, val_fraction=0.2)

    def sequences_dataset(self, seed):
        """self.tmp / "seq": 120 sequences [6, 3] of 2 classes (feature 0 shifted by the label)."""
        rng = np.random.default_rng(seed)
        s = rng.normal(size=(120, 6, 3)).astype(np.float32)
        y = rng.integers(0, 2, size=120)
        s[:, :, 0] += np.where(y == 1, 1.0, -1.0)[:, None]
        np.save(self.tmp / "seq-x.npy", s)
        np.save(self.tmp / "seq-y.npy", y.astype(np.int32))
        self.check_ok(run_strata("preprocess", "sequences", "--x", self.tmp / "seq-x.npy", "--y",
                                 self.tmp / "seq-y.npy", "-o", self.tmp / "seq", "--val-fraction", 0.2, "--quiet"))

    def train(self, name, values, ranks=1, resume=None, expect_ok=True):
        cfg = write_config(self.tmp / f"{name}-{len(list(self.tmp.glob('*.toml')))}.toml",
                           dict(TRAIN, **values, **{"train.out_dir": str(self.tmp / name)}))
        r = run_ranks(ranks, "train", "--config", cfg, *(["--resume", resume] if resume else []))
        if expect_ok:
            self.check_ok(r)
        return r

    def weights(self, name):
        with h5py.File(self.tmp / name / "weights.h5", "r") as f:
            return {k: f[k][...].astype(np.float64) for k in f.keys()}

    def report(self, name):
        return json.loads((self.tmp / name / "pruning.json").read_text())

    def assert_same(self, name, ref, exact=False):
        steps, _ = read_metrics(self.tmp / name / "metrics.jsonl")
        rsteps, _ = read_metrics(self.tmp / ref / "metrics.jsonl")
        self.assertEqual(len(steps), len(rsteps))
        for a, b in zip(steps, rsteps):
            if exact:
                self.assertEqual(a["loss"], b["loss"], f"step {a['step']}")
            else:
                self.assertAlmostEqual(a["loss"] / b["loss"], 1, delta=1e-5, msg=f"loss at step {a['step']}")
        weights, rweights = self.weights(name), self.weights(ref)
        for k, w in rweights.items():
            if k.endswith("attn.c_attn.bias") and not exact:
                continue  # its key part has a zero gradient up to rounding noise that AdamW amplifies (test_layouts.py)
            # The same elements pruned, and the same model.
            np.testing.assert_array_equal(weights[k] == 0, w == 0, err_msg=f"{name}: pruned elements of {k}")
            err = np.linalg.norm(weights[k] - w) / max(np.linalg.norm(w), 1e-30)
            self.assertLessEqual(err, 0 if exact else 1e-5, f"{name}: {k}")
        self.assertEqual(self.report(name), self.report(ref))

    def check_pruned(self, name, pruned_names, sparsity, per_tensor=False):
        """The report's figures, the zeros of the saved weights, and the tensors left whole."""
        report, weights = self.report(name), self.weights(name)
        self.assertEqual(sorted(report["tensors"]), sorted(pruned_names))
        total = sum(weights[k].size for k in pruned_names)
        zeros = sum(int((weights[k] == 0).sum()) for k in pruned_names)
        self.assertEqual(report["elements"], total)
        self.assertAlmostEqual(report["sparsity"], zeros / total, places=12)
        self.assertAlmostEqual(report["sparsity"], sparsity, delta=1.0 / total + 1e-12)
        for k in pruned_names:
            self.assertAlmostEqual(report["tensors"][k], (weights[k] == 0).mean(), places=12, msg=k)
            if per_tensor:  # the layer scope: each tensor on its own
                self.assertAlmostEqual(report["tensors"][k], sparsity, delta=0.5 / weights[k].size + 1e-12, msg=k)
        for k, w in weights.items():
            if k not in pruned_names:
                self.assertLess((w == 0).mean(), 0.5, f"{k} is not pruned")

    def test_cnn_schedule_layouts_checkpoints_and_exact_resume(self):
        values = dict(CNN, **PRUNE, **{"data.path": self.images, "checkpoint.every": 4})
        r = self.train("one", values)
        self.assertIn("prune: global magnitude pruning of 4 tensors to sparsity 0.6", r.stdout)
        # The schedule's updates: after steps 2, 5, 8 and 11, each at the cubic target.
        targets = {int(m[0]): float(m[1]) for m in
                   re.findall(r"prune: after step (\d+): sparsity [\d.]+ \(target ([\d.]+)\)", r.stdout)}
        self.assertEqual(sorted(targets), [2, 5, 8, 11])
        for t, s in targets.items():
            self.assertAlmostEqual(s, 0.6 + (0.1 - 0.6) * (1 - (t - 2) / 9) ** 3, places=4)
        weights = self.weights("one")
        pruned = [k for k in weights if k.endswith("weight") and weights[k].ndim >= 2]
        self.check_pruned("one", pruned, 0.6)
        steps, evals = read_metrics(self.tmp / "one" / "metrics.jsonl")
        self.assertLess(evals[-1]["val_loss"], steps[0]["loss"] - 0.1, "the pruned model still learns")
        # The checkpoints store the masks: the zeros of the weights at that step.
        with h5py.File(self.tmp / "one" / "checkpoints" / "step-00000016.h5", "r") as f:
            self.assertEqual(sorted(f["prune_mask"].keys()), sorted(pruned))
            for k in pruned:
                np.testing.assert_array_equal(f["prune_mask"][k][...] == 0, f["params"][k][...] == 0, k)
        r = run_strata("inspect", self.tmp / "one" / "checkpoints" / "step-00000016.h5")
        self.check_ok(r)
        for k in pruned:
            self.assertRegex(r.stdout, rf"prune_mask/{re.escape(k)}\b")
        for name, layout, ranks in [("dp2z", {"parallel.dp": 2, "parallel.zero1": True}, 2),
                                    ("tp2", {"parallel.tp": 2}, 2),
                                    ("pp2", {"parallel.pp": 2, "train.micro_batch_size": 4}, 2)]:
            with self.subTest(layout=name):
                self.train(name, dict(values, **layout), ranks=ranks)
                self.assert_same(name, "one")
        # Paused after step 6 (between mask updates, masks from the checkpoint) and resumed: the whole run, bit for
        # bit; resumed on two pipeline stages instead: the same model.
        cut = dict(values, **{"checkpoint.async": True})  # the masks copied for the background writer too
        self.assertEqual(self.train("cut", dict(cut, **{"train.stop_after": 6}), expect_ok=False).returncode, 75)
        self.train("cut", cut, resume="auto")
        self.assert_same("cut", "one", exact=True)
        self.assertEqual(self.train("moved", dict(values, **{"train.stop_after": 6}), expect_ok=False).returncode, 75)
        self.train("moved", dict(values, **{"parallel.pp": 2, "train.micro_batch_size": 4}), ranks=2, resume="auto")
        self.assert_same("moved", "one")

    def test_layer_scope_lstm_and_gpt(self):
        self.sequences_dataset(2)
        layer = dict(PRUNE, **{"prune.scope": "layer", "prune.sparsity": 0.5})
        lstm = dict(LSTM, **layer, **{"data.path": str(self.tmp / "seq")})
        self.train("lstm", lstm)
        weights = self.weights("lstm")
        self.check_pruned("lstm", [k for k in weights if weights[k].ndim >= 2], 0.5, per_tensor=True)
        self.train("lstm_pp2", dict(lstm, **{"parallel.pp": 2, "train.micro_batch_size": 4}), ranks=2)
        self.assert_same("lstm_pp2", "lstm")
        # GPT: the fused q|k|v weight and the MLP split over two tensor-parallel ranks; embeddings left whole, or
        # pruned too with prune.tensors = all.
        gpt = {"model.n_layer": 2, "model.n_head": 2, "model.d_model": 16, "model.vocab_size": 258,
               "model.seq_len": 16, "data.path": text_dataset(self.tmp), "train.eval_batches": 2,
               "train.eval_every": 0, "train.lr": 3e-3}
        self.train("gpt", dict(gpt, **layer))
        weights = self.weights("gpt")
        blocks = [k for k in weights if k.startswith("h.") and k.endswith("weight") and weights[k].ndim == 2]
        self.assertEqual(len(blocks), 8)
        self.check_pruned("gpt", blocks, 0.5, per_tensor=True)
        self.train("gpt_tp2", dict(gpt, **layer, **{"parallel.tp": 2}), ranks=2)
        self.assert_same("gpt_tp2", "gpt")
        self.train("gpt_all", dict(gpt, **PRUNE, **{"prune.tensors": "all"}))
        self.check_pruned("gpt_all", blocks + ["wte", "wpe"], 0.6)
        self.train("gpt_all_pp2", dict(gpt, **PRUNE, **{"prune.tensors": "all", "parallel.pp": 2,
                                                        "train.micro_batch_size": 4}), ranks=2)
        self.assert_same("gpt_all_pp2", "gpt_all")  # wte on both stages (tied): one mask

    def test_masks_equal_torch_prune(self):
        """One-shot pruning of the initial weights (train.steps = 0) against torch.nn.utils.prune on the same weights:
        global_unstructured over the weight tensors, and l1_unstructured per tensor for the layer scope."""
        import torch
        import torch.nn.utils.prune as torch_prune
        values = dict(CNN, **{"data.path": self.images, "train.steps": 0, "train.eval_every": 0})
        one_shot = {"prune.sparsity": 0.6, "prune.initial_sparsity": 0.6, "prune.start_step": 0,
                    "prune.end_step": 0}
        self.train("init", values)
        init = self.weights("init")
        names = [k for k in init if k.endswith("weight") and init[k].ndim >= 2]
        for scope in ["global", "layer"]:
            with self.subTest(scope=scope):
                self.train(scope, dict(values, **one_shot, **{"prune.scope": scope}))
                pruned = self.weights(scope)
                modules = {k: torch.nn.Module() for k in names}
                for k, m in modules.items():
                    m.weight = torch.nn.Parameter(torch.from_numpy(init[k]))
                if scope == "global":
                    torch_prune.global_unstructured([(m, "weight") for m in modules.values()],
                                                    pruning_method=torch_prune.L1Unstructured, amount=0.6)
                else:
                    for m in modules.values():
                        torch_prune.l1_unstructured(m, "weight", amount=0.6)
                for k in names:
                    mask = modules[k].weight_mask.numpy()
                    self.assertGreater((mask == 0).sum(), 0, k)
                    np.testing.assert_array_equal(pruned[k] == 0, mask == 0, err_msg=f"{scope}: {k}")
                    np.testing.assert_array_equal(pruned[k], init[k] * mask, err_msg=f"{scope}: {k}")
                for k in init:
                    if k not in names:
                        np.testing.assert_array_equal(pruned[k], init[k], err_msg=k)

    def predictions(self, config, weights, name, *sets):
        """`strata eval` of WEIGHTS: the logits [rows, classes] and the metrics."""
        args = ["eval", "--config", config, "--weights", weights, "--predictions", self.tmp / f"{name}.h5",
                "--metrics-json", self.tmp / f"{name}.json"]
        for s in sets:
            args += ["--set", s]
        self.check_ok(run_strata(*args))
        with h5py.File(self.tmp / f"{name}.h5", "r") as f:
            return f["scores"][...], json.loads((self.tmp / f"{name}.json").read_text())

    def prune(self, weights, out, args, expected_lines):
        """`strata prune WEIGHTS --out OUT ARGS`: checks its lines; returns the process and the --set fields it
        printed for the smaller model."""
        r = run_strata("prune", weights, "--out", out, *args)
        self.check_ok(r)
        for line in expected_lines:
            self.assertIn(f"prune: {line}\n", r.stdout)
        return r, re.search(r"fine-tune it with((?: --set \S+)+)", r.stdout).group(1).split(" --set ")[1:]

    def check_structured(self, name, values, zero, prune_args, expected_lines):
        """Trains NAME, zeroes the structures ZERO(weights) names (their incoming weights: they then output exactly
        0 and have the smallest L1 norm), prunes with PRUNE_ARGS and checks that the smaller model, evaluated by
        `strata eval` with the fields `strata prune` printed, gives the zeroed model's logits; then fine-tunes it."""
        self.train(name, values)
        out = self.tmp / name
        zeroed, small = self.tmp / f"{name}-zeroed.h5", self.tmp / f"{name}-small.h5"
        zeroed_copy(out / "weights.h5", zeroed, zero)
        r, sets = self.prune(zeroed, small, prune_args, expected_lines)
        full, full_metrics = self.predictions(out / "config.toml", zeroed, f"{name}-full")
        pruned, pruned_metrics = self.predictions(out / "config.toml", small, f"{name}-pruned", *sets)
        np.testing.assert_allclose(pruned, full, rtol=1e-5, atol=1e-5)
        self.assertAlmostEqual(pruned_metrics["loss"] / full_metrics["loss"], 1, delta=1e-5)
        with h5py.File(small, "r") as f:
            before = sum(v.size for v in self.weights(name).values())
            after = sum(f[k].size for k in f.keys())
        self.assertLess(after, before)
        self.assertIn(f"{before} -> {after} parameters", r.stdout)
        # The smaller model fine-tunes from its weights.
        self.train(f"{name}-tuned", dict(values, **{"train.steps": 4, "train.init_from": str(small)},
                                         **{k: json.loads(f"[{v}]" if "," in v else v) for k, v in (s.split("=", 1) for s in sets)}))
        return sets

    def test_structured_pruning_keeps_the_outputs_of_what_it_keeps(self):
        cnn = dict(CNN, **{"model.norm": "none", "data.path": self.images})

        def zero_cnn(f):
            for block, channels in [(0, [1]), (1, [2, 5])]:
                for c in channels:
                    f[f"blocks.{block}.conv.weight"][c] = 0
                    f[f"blocks.{block}.conv.bias"][c] = 0
            for u in [3, 9]:
                f["hidden.weight"][u] = 0
                f["hidden.bias"][u] = 0
        sets = self.check_structured("cnn", cnn, zero_cnn, ["--channels", 0.25, "--hidden", 0.125],
                                     ["blocks.0: 4 -> 3 channels", "blocks.1: 8 -> 6 channels", "hidden: 16 -> 14 units"])
        self.assertEqual(sorted(sets), ["model.channels=3,6", "model.hidden=14"])
        # GroupNorm: the same number from each group (8 channels in 2 groups, a quarter: 3 of each group's 4 stay).
        self.train("cnn_gn", dict(CNN, **{"data.path": self.images}))
        r = run_strata("prune", self.tmp / "cnn_gn" / "weights.h5", "--out", self.tmp / "gn.h5", "--channels", 0.25)
        self.check_ok(r)
        self.assertIn("prune: blocks.1: 8 -> 6 channels", r.stdout)
        self.assertIn("prune: blocks.0: 4 -> 2 channels", r.stdout)  # 2 groups of 2: one of each stays

        self.sequences_dataset(3)
        for cell, gates in [("lstm", 4), ("gru", 3)]:
            with self.subTest(cell=cell):
                def zero_units(f):
                    for layer, units in [(0, [2, 7]), (1, [4, 5])]:
                        for j in units:
                            for g in range(gates):
                                for t in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                                    f[f"lstm.{t}_l{layer}"][g * 12 + j] = 0
                sets = self.check_structured(cell, dict(LSTM, **{"model.cell": cell, "data.path": str(self.tmp / "seq")}),
                                             zero_units, ["--units", 2 / 12],
                                             ["lstm layer 0: 12 -> 10 units", "lstm layer 1: 12 -> 10 units"])
                self.assertEqual(sets, ["model.hidden_size=10"])
        # GPT: heads (q, k and v rows zeroed: uniform attention over zero values) and MLP units.
        gpt = {"model.n_layer": 2, "model.n_head": 4, "model.d_model": 16, "model.vocab_size": 258,
               "model.seq_len": 16, "data.path": text_dataset(self.tmp), "train.eval_batches": 2,
               "train.eval_every": 0, "train.lr": 3e-3}
        self.train("gpt_struct", gpt)

        def zero_gpt(f):
            for layer, heads, units in [(0, [1], [3, 40, 41]), (1, [3], [0, 7, 63])]:
                for h in heads:
                    for part in range(3):
                        f[f"h.{layer}.attn.c_attn.weight"][part * 16 + h * 4:part * 16 + h * 4 + 4] = 0
                        f[f"h.{layer}.attn.c_attn.bias"][part * 16 + h * 4:part * 16 + h * 4 + 4] = 0
                for u in units:
                    f[f"h.{layer}.mlp.c_fc.weight"][u] = 0
                    f[f"h.{layer}.mlp.c_fc.bias"][u] = 0
        out = self.tmp / "gpt_struct"
        zeroed, small = self.tmp / "gpt-zeroed.h5", self.tmp / "gpt-small.h5"
        zeroed_copy(out / "weights.h5", zeroed, zero_gpt)
        _, sets = self.prune(zeroed, small, ["--heads", 0.25, "--mlp", 3 / 64],
                             ["h.0.attn: 4 -> 3 heads", "h.1.mlp: 64 -> 61 units"])
        self.assertEqual(sorted(sets), ["model.d_head=4", "model.d_mlp=61", "model.n_head=3"])
        losses = []
        for weights, extra in [(zeroed, []), (small, sets)]:
            args = ["eval", "--config", out / "config.toml", "--weights", weights, "--metrics-json",
                    self.tmp / "gpt-eval.json"]
            for s in extra:
                args += ["--set", s]
            self.check_ok(run_strata(*args))
            losses.append(json.loads((self.tmp / "gpt-eval.json").read_text())["loss"])
        self.assertAlmostEqual(losses[1] / losses[0], 1, delta=1e-6)
        # The smaller GPT (3 heads of 4: attention 12 wide in a 16-wide stream) fine-tunes from its weights, the same
        # on two pipeline stages.
        tuned = dict(gpt, **{"train.steps": 4, "train.init_from": str(small), "model.n_head": 3, "model.d_head": 4,
                             "model.d_mlp": 61, "train.save_weights": "weights.h5"})
        self.train("gpt_tuned", tuned)
        self.train("gpt_tuned_pp2", dict(tuned, **{"parallel.pp": 2, "train.micro_batch_size": 4}), ranks=2)
        steps, _ = read_metrics(self.tmp / "gpt_tuned" / "metrics.jsonl")
        steps2, _ = read_metrics(self.tmp / "gpt_tuned_pp2" / "metrics.jsonl")
        for a, b in zip(steps, steps2):
            self.assertAlmostEqual(a["loss"] / b["loss"], 1, delta=1e-5)
        # One clear line for what does not apply.
        for args, message in [(["--units", 0.5], "--units does not apply to model.kind = cnn"),
                              (["--channels", 1.0], "--channels = 1: expected a fraction in [0, 1)"),
                              ([], "nothing to remove")]:
            r = run_strata("prune", self.tmp / "cnn" / "weights.h5", "--out", self.tmp / "bad.h5", *args)
            self.assertNotEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(message, r.stderr)

    def test_bad_settings(self):
        base = dict(CNN, **PRUNE, **{"data.path": self.images})
        for values, message in [({"prune.sparsity": 1.0}, "prune.sparsity = 1: expected in [0, 1) (0: off)"),
                                ({"prune.sparsity": -0.2}, "prune.sparsity = -0.2: expected in [0, 1)"),
                                ({"prune.end_step": 40}, "prune.end_step = 40: expected prune.start_step = 2 .. "
                                                         "train.steps = 16"),
                                ({"prune.scope": "rows"}, "prune.scope = 'rows': expected global or layer")]:
            with self.subTest(values=values):
                line = self.mpi_error_line(self.train("bad", dict(base, **values), ranks=2, expect_ok=False))
                self.assertIn(message, line)


if __name__ == "__main__":
    unittest.main()
