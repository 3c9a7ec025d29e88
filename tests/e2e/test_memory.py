#!/usr/bin/python3
"""The memory report (src/train/memory_report.hpp): every rank's estimate before training (parameters, gradients,
AdamW state, the activations its pipeline stage holds), the largest rank named, train.memory_limit_gb refusing a
layout with one line before any step, and the measured peak at the end.

Run: /usr/bin/python3 tests/e2e/test_memory.py [-v]
"""
import re
import unittest

from test_cli import StrataTestCase, text_dataset, write_config
from test_datasets import run_ranks

GPT = {"model.n_layer": 2, "model.n_head": 2, "model.d_model": 32, "model.vocab_size": 258, "model.seq_len": 32,
       "train.batch_size": 8, "train.steps": 2, "train.eval_batches": 1, "train.log_every": 100}
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def parse(text):
    """{part: bytes} of a `describe` line, with the activation slots and the total."""
    out = {}
    for part, value, unit in re.findall(r"(parameters|gradients|AdamW|activations|teacher) ([\d.]+) (B|KiB|MiB|GiB)",
                                        text):
        out[part] = float(value) * UNITS[unit]
    m = re.search(r"\((\d+) x ([\d.]+) (B|KiB|MiB|GiB)\)", text)
    if m:
        out["slots"], out["slot"] = int(m.group(1)), float(m.group(2)) * UNITS[m.group(3)]
    out["total"] = float(re.search(r"= ([\d.]+) (B|KiB|MiB|GiB)", text).group(1)) * UNITS[
        re.search(r"= [\d.]+ (B|KiB|MiB|GiB)", text).group(1)]
    return out


class MemoryTest(StrataTestCase):
    def train(self, name, values, ranks=1, expect_ok=True):
        cfg = write_config(self.tmp / f"{name}.toml", dict(GPT, **values, **{"data.path": self.data,
                                                                            "train.out_dir": str(self.tmp / name)}))
        r = run_ranks(ranks, "train", "--config", cfg)
        if expect_ok:
            self.check_ok(r)
        return r

    def setUp(self):
        super().setUp()
        self.data = text_dataset(self.tmp)

    def estimate(self, r):
        return parse(re.search(r"memory per rank \(estimated\): (.*)", r.stdout).group(1).split(";")[0])

    def test_estimates_limit_and_peak(self):
        r = self.train("one", {})
        one = self.estimate(r)
        params = int(re.search(r"model: gpt (\d+) parameters", r.stdout).group(1))
        self.assertAlmostEqual(one["parameters"], 4 * params, delta=0.05 * 1024 + 4 * params * 1e-3)
        self.assertAlmostEqual(one["AdamW"], 8 * params, delta=0.05 * 1024 + 8 * params * 1e-3)
        self.assertEqual(one["slots"], 1)
        peak = re.search(r"memory: peak host RSS ([\d.]+) (MiB|GiB)", r.stdout)
        self.assertGreater(float(peak.group(1)) * UNITS[peak.group(2)], one["total"])  # measured: more than buffers
        # ZeRO-1 over 2 data-parallel ranks halves the AdamW state of each.
        zero = self.estimate(self.train("zero1", {"parallel.dp": 2, "parallel.zero1": True}, ranks=2))
        self.assertAlmostEqual(zero["AdamW"], one["AdamW"] / 2, delta=0.1 * 1024)
        # GPipe holds every microbatch on each stage, 1F1B pp - stage of them: the first stage is the largest.
        gpipe = self.train("gpipe", {"parallel.pp": 2, "parallel.schedule": "gpipe", "train.micro_batch_size": 2},
                           ranks=2)
        self.assertEqual(self.estimate(gpipe)["slots"], 4)
        self.assertIn("most microbatches' activations held per stage: 4 4", gpipe.stdout)
        f1b = self.train("1f1b", {"parallel.pp": 2, "train.micro_batch_size": 2}, ranks=2)
        self.assertEqual(self.estimate(f1b)["slots"], 2)
        self.assertIn("most microbatches' activations held per stage: 2 1", f1b.stdout)
        # A limit below the largest rank's estimate stops every rank before the first step, naming that rank.
        m = re.search(r"the largest, rank \d+ \(dp \d+, tp \d+, pp \d+\): ([\d.]+) (B|KiB|MiB|GiB)", gpipe.stdout)
        largest = {"total": float(m.group(1)) * UNITS[m.group(2)]}
        self.assertGreaterEqual(largest["total"], self.estimate(gpipe)["total"])
        limit = largest["total"] * 0.9 / 2 ** 30
        line = self.mpi_error_line(self.train("limited", {"parallel.pp": 2, "parallel.schedule": "gpipe",
                                                          "train.micro_batch_size": 2,
                                                          "train.memory_limit_gb": limit}, ranks=2, expect_ok=False))
        self.assertRegex(line, r"train\.memory_limit_gb = [\d.e-]+: rank \d+ \(dp 0, tp 0, pp \d\) needs an estimated ")
        self.train("fits", {"parallel.pp": 2, "parallel.schedule": "gpipe", "train.micro_batch_size": 2,
                            "train.memory_limit_gb": largest["total"] * 1.1 / 2 ** 30}, ranks=2)


if __name__ == "__main__":
    unittest.main()
