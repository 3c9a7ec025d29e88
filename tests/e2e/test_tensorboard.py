#!/usr/bin/python3
"""TensorBoard event files (`<out_dir>/tb`, train/tensorboard_log.hpp) read back by the `tensorboard` package's own
readers: every training step's scalars equal metrics.jsonl, validation scalars at each evaluation (a language model's
loss and perplexity, a classifier's accuracy and F1), the resolved config as text; a run killed after writing events
past its last checkpoint and resumed has every step exactly once; a damaged record is caught by the reader's CRC check;
jobs/plot_runs.py draws the runs' own metrics.

Run: /usr/bin/python3 tests/e2e/test_tensorboard.py [-v]
"""
import os
import subprocess
import sys
import unittest

import numpy as np
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

from test_cli import REPO, STRATA, StrataTestCase, read_metrics, text_dataset, write_config

GPT = {"model.n_layer": 1, "model.n_head": 2, "model.d_model": 16, "model.vocab_size": 258, "model.seq_len": 16,
       "train.batch_size": 4, "train.steps": 12, "train.eval_every": 4, "train.eval_batches": 2,
       "checkpoint.every": 4, "checkpoint.keep_last": 10}


def read_records(path):
    """The records of an event file through TensorBoard's own TFRecord reader (which checks the CRCs)."""
    reader = pywrap_tensorflow.PyRecordReader_New(str(path))
    n = 0
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return n
        n += 1


def scalars(tb_dir):
    """Every scalar and tensor of the run directory, as TensorBoard loads them: {tag: [(step, value)]}."""
    ea = event_accumulator.EventAccumulator(str(tb_dir), size_guidance={event_accumulator.SCALARS: 0,
                                                                        event_accumulator.TENSORS: 0})
    ea.Reload()
    out = {tag: [(s.step, s.value) for s in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}
    texts = {tag: [(t.step, t.tensor_proto.string_val[0].decode()) for t in ea.Tensors(tag)]
             for tag in ea.Tags()["tensors"]}
    return out, texts


class TensorBoardTest(StrataTestCase):
    def train(self, name, values, env=None, expect_ok=True, resume=None):
        cfg = write_config(self.tmp / f"{name}-{len(list(self.tmp.glob('*.toml')))}.toml",
                           dict(values, **{"train.out_dir": str(self.tmp / name)}))
        r = subprocess.run([STRATA, "train", "--config", cfg, *(["--resume", resume] if resume else [])],
                           env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=300)
        if expect_ok:
            self.check_ok(r)
        return r

    def test_scalars_config_and_resume_without_duplicates(self):
        gpt = dict(GPT, **{"data.path": text_dataset(self.tmp)})
        r = self.train("run", gpt)
        # The step lines carry the time since the run's first step and an ETA (none left at the last step).
        self.assertRegex(r.stdout, r"(?m)^step +1/12 \|.*\| [\d.]+s elapsed, ETA [\d.]+s$")
        self.assertRegex(r.stdout, r"(?m)^step +12/12 \|.*\| [\d.]+s elapsed, ETA 0\.0s$")
        got, texts = scalars(self.tmp / "run" / "tb")
        steps, evals = read_metrics(self.tmp / "run" / "metrics.jsonl")
        for tag, key in [("train/loss", "loss"), ("train/lr", "lr"), ("train/grad_norm", "grad_norm"),
                         ("train/tokens_per_s", "tokens_per_s"), ("time/step_ms", "ms"),
                         ("time/data_wait_ms", "data_wait_ms"), ("time/comm_ms", "comm_ms")]:
            self.assertEqual([s for s, _ in got[tag]], list(range(1, 13)), tag)
            np.testing.assert_array_equal([v for _, v in got[tag]], np.float32([s[key] for s in steps]), tag)
        self.assertEqual([s for s, _ in got["val/loss"]], [4, 8, 12])
        np.testing.assert_array_equal([v for _, v in got["val/loss"]], np.float32([e["val_loss"] for e in evals]))
        self.assertIn("val/perplexity", got)
        self.assertGreater(min(v for _, v in got["memory/host_peak_rss_mib"]), 1.0)
        config = (self.tmp / "run" / "config.toml").read_text()
        self.assertEqual(texts["config"], [(0, f"```toml\n{config}```")])

        # Killed while saving step 8 (events through step 8 written, checkpoint 8 never committed), resumed from
        # step 4: steps 5..8 are not repeated, and the whole run reads like the uninterrupted one.
        r = self.train("cut", gpt, env={"STRATA_CRASH_AT": "write:8:0"}, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        before, _ = scalars(self.tmp / "cut" / "tb")
        self.assertEqual([s for s, _ in before["train/loss"]], list(range(1, 9)))
        self.train("cut", gpt, resume="auto")
        after, texts = scalars(self.tmp / "cut" / "tb")
        self.assertEqual(len(list((self.tmp / "cut" / "tb").glob("events.out.tfevents.*"))), 2)
        for tag in ("train/loss", "train/lr", "val/loss"):
            self.assertEqual(after[tag], got[tag], tag)  # each step once, with the uninterrupted run's values
        self.assertEqual([s for s, _ in texts["config"]], [0, 4])  # the config of each segment, at its first step

        # TensorBoard's record reader checks both CRCs of every record: all of Strata's pass, and one flipped byte in
        # a record's data fails its check.
        path = next((self.tmp / "run" / "tb").glob("events.out.tfevents.*"))
        self.assertEqual(read_records(path), len(list(event_file_loader.LegacyEventFileLoader(str(path)).Load())))
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x40
        damaged = self.tmp / "damaged"
        damaged.write_bytes(bytes(data))
        with self.assertRaisesRegex(errors.DataLossError, "crc32 check"):
            read_records(damaged)

    def test_plots_of_runs(self):
        """jobs/plot_runs.py: the curves it draws are the runs' metrics (a restarted run's steps once each), and it
        writes the four PNGs."""
        sys.path.insert(0, str(REPO / "jobs"))
        import plot_runs
        gpt = dict(GPT, **{"data.path": text_dataset(self.tmp)})
        self.train("a", gpt)
        self.train("b", dict(gpt, **{"train.lr": 1e-3}), env={"STRATA_CRASH_AT": "write:8:0"}, expect_ok=False)
        self.train("b", dict(gpt, **{"train.lr": 1e-3}), resume="auto")
        for name in ("a", "b"):
            s = plot_runs.series(str(self.tmp / name))
            steps, evals = read_metrics(self.tmp / name / "metrics.jsonl")
            self.assertEqual(s["step"], list(range(1, 13)))
            self.assertEqual(s["loss"], [m["loss"] for m in steps])
            self.assertEqual(s["val"], [(e["step"], e["val_loss"]) for e in evals])
            np.testing.assert_allclose(s["seconds"], np.cumsum([m["ms"] for m in steps]) / 1000)
            self.assertEqual(s["throughput_unit"], "tokens/s")
        r = subprocess.run([sys.executable, str(REPO / "jobs" / "plot_runs.py"), str(self.tmp / "a"),
                            str(self.tmp / "b"), "-o", str(self.tmp / "plots"), "--smooth", "3"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        for png in ("loss.png", "loss_time.png", "lr.png", "throughput.png"):
            data = (self.tmp / "plots" / png).read_bytes()
            self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"), png)
            self.assertGreater(len(data), 10000, png)

    def test_classifier_metrics_and_switch(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(80, 1, 6, 6)).astype(np.float32)
        y = rng.integers(0, 3, size=80)
        cnn = {"model.kind": "cnn", "model.channels": [4], "model.norm_groups": 2, "train.batch_size": 8,
               "train.steps": 6, "train.eval_every": 3, "train.eval_batches": 0,
               "data.path": self.images_dataset("images", x, y, val_fraction=0.25)}
        self.train("cnn", cnn)
        got, _ = scalars(self.tmp / "cnn" / "tb")
        _, evals = read_metrics(self.tmp / "cnn" / "metrics.jsonl")
        for tag, key in [("val/accuracy", "val_accuracy"), ("val/macro_f1", "val_macro_f1"),
                         ("val/weighted_f1", "val_weighted_f1"), ("val/top3", "val_top3"), ("val/loss", "val_loss")]:
            self.assertEqual(got[tag], [(e["step"], np.float32(e[key])) for e in evals], tag)
        self.assertIn("train/samples_per_s", got)
        self.train("off", dict(cnn, **{"train.tensorboard": False}))
        self.assertFalse((self.tmp / "off" / "tb").exists())


if __name__ == "__main__":
    unittest.main()
