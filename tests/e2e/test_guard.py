#!/usr/bin/python3
"""The NaN/Inf and spike guard (src/train/step_guard.hpp) end to end, with faults injected by the debug switch
STRATA_DEBUG_INJECT (a NaN or a huge value in one rank's gradient, for the batches of chosen steps):

- a NaN on one step is skipped on every rank: the parameters and AdamW's state after it equal those before it;
- bad steps in a row roll back to the newest checkpoint before them and skip their batches: the final state equals,
  bit for bit, a run that skips those batches from the start (guard.skip_batches), and a crash after the rollback
  resumes to the same state with the history once;
- the same at dp 2 with ZeRO-1 (fault on rank 1), tp 2 and pp 2 as on one rank;
- a gradient-norm spike (z-score) is skipped; guard.max_rollbacks and a missing checkpoint stop with one line;
  guard.enabled = false stops at the first non-finite step.

Run: /usr/bin/python3 tests/e2e/test_guard.py [-v]
"""
import json
import os
import re
import unittest

import h5py
import numpy as np

from test_cli import StrataTestCase, read_metrics, text_dataset, write_config
from test_datasets import MPI_ENV, run_ranks

GPT = {"model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
       "train.batch_size": 8, "train.steps": 12, "train.eval_batches": 1, "train.log_every": 100,
       "train.tensorboard": False, "checkpoint.every": 2, "checkpoint.keep_last": 10}


def checkpoint_arrays(path):
    """{dataset path: array} of every tensor group (parameters, AdamW moments) in a checkpoint."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
        attrs = {k: f.attrs[k] for k in ("step", "consumed_samples", "adam_steps")}
    return out, attrs


class GuardTest(StrataTestCase):
    def setUp(self):
        super().setUp()
        self.data = text_dataset(self.tmp)

    def train(self, name, values=None, ranks=1, inject=None, expect_ok=True, env=None):
        out = self.tmp / name
        cfg = write_config(self.tmp / f"{name}.toml",
                           dict(GPT, **(values or {}), **{"data.path": self.data, "train.out_dir": str(out)}))
        run_env = dict(env or {})
        if inject:
            run_env["STRATA_DEBUG_INJECT"] = inject
        saved = dict(MPI_ENV)
        MPI_ENV.update(run_env)  # the environment run_ranks gives strata
        try:
            r = run_ranks(ranks, "train", "--config", cfg)
        finally:
            MPI_ENV.clear()
            MPI_ENV.update(saved)
        if expect_ok:
            self.check_ok(r)
        return r, out

    def error_line(self, r):
        """The one error every rank reports during training (under MPI tagged " [rank R, FILE:LINE]")."""
        self.assertNotEqual(r.returncode, 0, r.stdout[-2000:])
        errors = {re.sub(r" \[rank \d+, [^]]*\]$", "", l) for l in r.stderr.splitlines() if l.startswith("strata: error:")}
        self.assertEqual(len(errors), 1, f"expected one error line:\n{r.stderr[-3000:]}")
        return errors.pop()

    def guard_report(self, out):
        return json.loads((out / "guard.json").read_text())

    def checkpoint(self, out, step):
        return checkpoint_arrays(out / "checkpoints" / f"step-{step:08d}.h5")

    def assert_same_state(self, a, b):
        (ta, aa), (tb, ab) = a, b
        self.assertEqual(aa, ab)
        self.assertEqual(sorted(ta), sorted(tb))
        for k in ta:
            np.testing.assert_array_equal(ta[k], tb[k], err_msg=k)

    def test_one_nan_step_is_skipped_and_changes_nothing(self):
        r, out = self.train("skip", {"checkpoint.every": 1}, inject="nan:5:1")
        self.assertIn("guard: step 5 skipped (gradient norm is nan), 1 bad step(s) in a row", r.stdout)
        steps, _ = read_metrics(out / "metrics.jsonl")
        self.assertEqual([s["step"] for s in steps], list(range(1, 13)))
        self.assertEqual([s["step"] for s in steps if "skipped" in s], [5])
        self.assertTrue(all(np.isfinite(s["loss"]) for s in steps))
        # Skipped: parameters, moments and AdamW's step counter as after step 4; the batch was consumed.
        (t4, a4), (t5, a5) = self.checkpoint(out, 4), self.checkpoint(out, 5)
        for k in t4:
            np.testing.assert_array_equal(t4[k], t5[k], err_msg=k)
        self.assertEqual(a5["adam_steps"], a4["adam_steps"])
        self.assertEqual(a5["consumed_samples"], a4["consumed_samples"] + 8)
        report = self.guard_report(out)
        self.assertEqual((report["skipped_steps"], report["rollbacks"]), (1, 0))
        self.assertEqual(report["events"][0]["batch_position"], 32)
        self.assertIn("guard: 1 step(s) skipped and 0 rollback(s)", r.stdout)

    def test_rollback_skips_the_bad_batches_deterministically(self):
        r, out = self.train("rollback", {"checkpoint.async": True}, inject="nan:5:3")
        self.assertIn("guard: rollback 1 of at most 3: 3 bad steps in a row (5 .. 7); back to step 4", r.stdout)
        self.assertIn("checkpoint: rolled back to", r.stdout)
        report = self.guard_report(out)
        self.assertEqual([e["event"] for e in report["events"]], ["skip"] * 3 + ["rollback"])
        self.assertEqual(report["events"][-1]["skipped_batch_positions"], [32, 40, 48])
        self.assertEqual(report["skipped_sample_intervals"], [[32, 56]])
        # The abandoned trajectory's checkpoint is set aside, not deleted; `latest` is the final one.
        ckpts = sorted(os.listdir(out / "checkpoints"))
        self.assertIn("step-00000006.h5.rolled-back", ckpts)
        self.assertEqual((out / "checkpoints" / "latest").read_text().strip(), "step-00000012.h5")
        # Each step once in the metrics, none of them skipped any more (the rollback rewound the file).
        steps, _ = read_metrics(out / "metrics.jsonl")
        self.assertEqual([s["step"] for s in steps], list(range(1, 13)))
        self.assertFalse(any("skipped" in s for s in steps))
        # The same final state as a run that never reads batches 4, 5, 6.
        _, clean = self.train("clean", {"guard.skip_batches": [4, 5, 6]})
        self.assert_same_state(self.checkpoint(out, 12), self.checkpoint(clean, 12))
        self.assertEqual(self.checkpoint(out, 12)[1]["consumed_samples"], 8 * 15)
        # A crash during the save of step 8 (after the rollback), then a resume: the same state, the history once.
        r, crashed = self.train("crashed", {"checkpoint.async": True}, inject="nan:5:3", expect_ok=False,
                                env={"STRATA_CRASH_AT": "write:8:0"})
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(self.guard_report(crashed)["rollbacks"], 1)
        r, _ = self.train("crashed", {"checkpoint.async": True, "checkpoint.resume": "auto"}, inject="nan:5:3")
        self.assertNotIn("guard: rollback", r.stdout)
        self.assert_same_state(self.checkpoint(crashed, 12), self.checkpoint(out, 12))
        report = self.guard_report(crashed)
        self.assertEqual((report["skipped_steps"], report["rollbacks"], len(report["events"])), (3, 1, 4))

    def test_layouts_roll_back_like_one_rank(self):
        _, one = self.train("one", inject="nan:5:3")
        ref, _ = read_metrics(one / "metrics.jsonl")
        for name, values, fault_rank in (("dp2", {"parallel.dp": 2, "parallel.zero1": True}, 1),
                                          ("tp2", {"parallel.tp": 2}, 1),
                                          ("pp2", {"parallel.pp": 2, "train.micro_batch_size": 2}, 0)):
            with self.subTest(layout=name):
                r, out = self.train(name, values, ranks=2, inject=f"nan:5:3:{fault_rank}")
                self.assertIn("guard: rollback 1 of at most 3: 3 bad steps in a row (5 .. 7); back to step 4",
                              r.stdout)
                steps, _ = read_metrics(out / "metrics.jsonl")
                self.assertEqual([s["step"] for s in steps], [s["step"] for s in ref])
                for a, b in zip(steps, ref):
                    self.assertAlmostEqual(a["loss"] / b["loss"], 1.0, delta=1e-5, msg=f"{name} step {a['step']}")
                self.assertEqual(self.guard_report(out)["skipped_sample_intervals"], [[32, 56]])

    def test_gradient_norm_spike_is_skipped(self):
        values = {"guard.spike_z": 10, "guard.window": 5}
        r, out = self.train("spike", values, inject="spike:9:1")
        events = self.guard_report(out)["events"]
        self.assertEqual([e["step"] for e in events], [9], r.stdout)
        self.assertIn("gradient norm spike", events[0]["cause"])
        self.assertIn("above the last 5 steps' mean", events[0]["cause"])
        # Without the fault nothing is skipped, and the run after step 9 differs only by that batch's update.
        r, clean = self.train("spike_clean", values)
        self.assertFalse((clean / "guard.json").exists())
        self.assertNotIn("guard:", r.stdout)

    def test_runs_that_cannot_recover_stop_with_one_line(self):
        # Every batch from step 5 on is bad: one rollback allowed, the second stops the run.
        r, _ = self.train("diverges", {"guard.rollback_after": 2, "guard.max_rollbacks": 1}, inject="nan:5:100",
                          expect_ok=False)
        line = self.error_line(r)
        self.assertRegex(line, r"guard: 2 bad steps in a row \(\d+ \.\. \d+; the last: gradient norm is nan\) after 1 "
                               r"rollback\(s\), guard.max_rollbacks = 1: stopping")
        # No checkpoint before the bad run to roll back to.
        r, _ = self.train("nockpt", {"checkpoint.every": 0}, inject="nan:2:3", expect_ok=False)
        self.assertIn("guard: no checkpoint at or before step 1", self.error_line(r))
        # The guard off: the first non-finite step stops the run.
        r, _ = self.train("off", {"guard.enabled": False}, inject="nan:3:1", expect_ok=False)
        line = self.error_line(r)
        self.assertIn("step 3: loss", line)
        self.assertIn("is not finite (guard.enabled = false)", line)
        # Bad settings: one line naming the field.
        for key, value, expected in (("guard.window", 1, "guard.window = 1: expected >= 2"),
                                     ("guard.spike_z", -1, "guard.spike_z = -1: expected >= 0"),
                                     ("guard.skip_batches", [-2], "guard.skip_batches[0] = -2")):
            r, _ = self.train(f"bad_{key}", {key: value}, expect_ok=False)
            self.assertIn(expected, self.mpi_error_line(r))


if __name__ == "__main__":
    unittest.main()
