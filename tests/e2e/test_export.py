#!/usr/bin/python3
"""End-to-end tests of `strata inspect` and `strata export` on a checkpoint written by `strata train`: the file reads in
h5py as documented (groups, attributes, checksums recomputed in NumPy), inspect verifies it and names a damaged
tensor, and the exported weights load into PyTorch (perf/torch_gpt.py) from safetensors with a minimal loader and
from the HDF5 export with load_strata_weights, giving bit-identical logits; `strata eval` reads the HDF5 export.

The binary comes from $STRATA_BIN (ctest sets it), else build/default/strata under the repository root.
Run: /usr/bin/python3 tests/e2e/test_export.py [-v] [TestClass.test_name]
"""
import json
import math
import re
import shutil
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np
import torch

from test_cli import REPO, TINY, StrataTestCase, run_strata, text_dataset, write_config

sys.path.insert(0, str(REPO / "perf"))
import torch_gpt  # noqa: E402

STEPS = 10
MODEL = {k.split(".", 1)[1]: v for k, v in TINY.items() if k.startswith("model.")}
GROUPS = ("params", "adam_m", "adam_v")


def tensor_shapes(n_layer, d_model, vocab_size, seq_len, **_):
    """Every tensor of docs/weights-format.md with its shape."""
    C, V, T = d_model, vocab_size, seq_len
    shapes = {"wte": (V, C), "wpe": (T, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for i in range(n_layer):
        shapes.update({f"h.{i}.ln_1.weight": (C,), f"h.{i}.ln_1.bias": (C,),
                       f"h.{i}.attn.c_attn.weight": (3 * C, C), f"h.{i}.attn.c_attn.bias": (3 * C,),
                       f"h.{i}.attn.c_proj.weight": (C, C), f"h.{i}.attn.c_proj.bias": (C,),
                       f"h.{i}.ln_2.weight": (C,), f"h.{i}.ln_2.bias": (C,),
                       f"h.{i}.mlp.c_fc.weight": (4 * C, C), f"h.{i}.mlp.c_fc.bias": (4 * C,),
                       f"h.{i}.mlp.c_proj.weight": (C, 4 * C), f"h.{i}.mlp.c_proj.bias": (C,)})
    return shapes


def mix64(z):
    """rng::mix64 (src/core/rng.hpp) on a uint64 array, wrapping like C++."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def checksum(values):
    """The per-tensor checksum: sum mod 2^64 over elements of mix64(float32 bits ^ flat index * 0x9E3779B97F4A7C15),
    16 hex digits."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    bits = flat.view(np.uint32).astype(np.uint64)
    keys = np.arange(flat.size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2^64
    hashes = mix64(bits ^ keys)
    return f"{int(hashes.sum(dtype=np.uint64)):016x}"  # numpy's uint64 sum wraps mod 2^64


def load_safetensors(path):
    """A minimal safetensors reader: 8-byte little-endian header length, JSON header, raw little-endian tensors."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=8 + n + begin)
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return metadata, tensors, n


class ExportTest(StrataTestCase):
    """One tiny training run with checkpoints, shared by the tests (none of which changes its files)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="strata-e2e-export-")
        cls.tmp = Path(cls._tmp.name)
        cls.data = text_dataset(cls.tmp)
        cls.out_dir = cls.tmp / "run"
        values = dict(TINY, **{"data.path": cls.data, "train.out_dir": str(cls.out_dir), "train.steps": STEPS,
                               "train.eval_every": 0, "checkpoint.every": 5, "train.save_weights": "weights.h5"})
        cfg = write_config(cls.tmp / "run.toml", values)
        r = run_strata("train", "--config", cfg, cwd=cls.tmp)
        assert r.returncode == 0, f"training failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        cls.ckpt_dir = cls.out_dir / "checkpoints"
        cls.ckpt = cls.ckpt_dir / f"step-{STEPS:08d}.h5"

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def setUp(self):
        self._case_tmp = tempfile.TemporaryDirectory(prefix="strata-e2e-export-case-")
        self.case = Path(self._case_tmp.name)

    def tearDown(self):
        self._case_tmp.cleanup()

    def one_error_line(self, r):
        self.assertNotEqual(r.returncode, 0, r.stdout[-2000:])
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got:\n{r.stderr}")
        self.assertTrue(lines[0].startswith("strata: error: "), lines[0])
        return lines[0]

    def damaged_copy(self, dataset, index):
        """A copy of the checkpoint with one element of `dataset` changed (its stored checksum kept)."""
        bad = self.case / "damaged.h5"
        shutil.copyfile(self.ckpt, bad)
        with h5py.File(bad, "r+") as f:
            d = f[dataset]
            values = d[...]
            values[index] += np.float32(0.5)
            d[...] = values
        return bad

    # (a) The checkpoint as h5py sees it.
    def test_checkpoint_layout_in_h5py(self):
        self.assertEqual((self.ckpt_dir / "latest").read_text().strip(), self.ckpt.name)
        shapes = tensor_shapes(**MODEL)
        with h5py.File(self.ckpt, "r") as f:
            self.assertEqual(set(f.keys()), set(GROUPS))
            for group in GROUPS:
                self.assertEqual(set(f[group].keys()), set(shapes), group)
                for name, shape in shapes.items():
                    d = f[f"{group}/{name}"]
                    self.assertEqual(d.shape, shape, d.name)
                    self.assertEqual(d.dtype, np.float32, d.name)
                    stored = d.attrs["checksum"]
                    self.assertRegex(stored, r"^[0-9a-f]{16}$", d.name)
                    self.assertEqual(checksum(d[...]), stored, f"{d.name}: checksum recomputed in NumPy")
            a = f.attrs
            self.assertEqual(a["format"], "strata-checkpoint")
            self.assertEqual(int(a["format_version"]), 2)
            self.assertEqual(sorted(a["tensors"].split("\n")), sorted(f["params"].keys()))
            self.assertEqual(int(a["step"]), STEPS)
            self.assertEqual(int(a["adam_steps"]), STEPS)
            self.assertEqual(int(a["consumed_samples"]), STEPS * TINY["train.batch_size"])
            self.assertEqual(int(a["train_seed"]), 42)
            self.assertEqual(int(a["data_seed"]), 1234)
            self.assertEqual(int(a["data_shuffle"]), 1)
            self.assertEqual(a["lr_schedule"], "cosine")
            self.assertTrue(0 < float(a["lr"]) <= TINY["train.lr"])
            self.assertEqual(a["model.kind"], "gpt")
            for key, value in MODEL.items():
                self.assertEqual(int(a[f"model.{key}"]), value, key)
            for key, value in {"dp": 1, "tp": 1, "pp": 1, "zero1": 0}.items():
                self.assertEqual(int(a[f"layout.{key}"]), value, key)
            self.assertRegex(a["library_version"], r"^\d+\.\d+")
            config = tomllib.loads(a["config"])
            self.assertEqual(config["model"], {"kind": "gpt", **MODEL, "d_head": 0, "d_mlp": 0})
            self.assertEqual(config["train"]["steps"], STEPS)
            self.assertEqual(config["data"]["path"], self.data)
            # The final checkpoint holds the final weights: those train.save_weights wrote.
            with h5py.File(self.out_dir / "weights.h5", "r") as w:
                for name in shapes:
                    np.testing.assert_array_equal(f[f"params/{name}"][...], w[name][...], name)

    # (b) strata inspect.
    def test_inspect_verifies_every_tensor(self):
        n = 3 * len(tensor_shapes(**MODEL))
        for target in (self.ckpt, self.ckpt_dir):  # a file, or a directory's latest
            r = run_strata("inspect", target)
            self.check_ok(r)
            out = r.stdout
            self.assertEqual(out.splitlines()[-1], f"checksums: all {n} OK", out[-2000:])
            self.assertRegex(out, rf"(?m)^file: +{re.escape(str(self.ckpt))}$")
            self.assertRegex(out, rf"(?m)^step: +{STEPS}$")
            self.assertRegex(out, rf"(?m)^consumed samples: +{STEPS * TINY['train.batch_size']}$")
            self.assertRegex(out, r"(?m)^layout: +dp 1 x tp 1 x pp 1$")
            self.assertRegex(out, r"(?m)^model: +n_layer 2, n_head 2, d_model 32, vocab_size 257, seq_len 32, d_head 0, d_mlp 0$")
            self.assertRegex(out, rf"(?m)^total: {n} tensors, [0-9.]+ MiB$")
            rows = re.findall(r"(?m)^((?:params|adam_m|adam_v)/\S+) +(\[[0-9, ]+\]) +float32 +([0-9a-f]{16}) +(\S+)$",
                              out)
            self.assertEqual(len(rows), n, out)
            with h5py.File(self.ckpt, "r") as f:
                for dataset, shape, stored, status in rows:
                    self.assertEqual(status, "OK", dataset)
                    self.assertEqual(stored, f[dataset].attrs["checksum"], dataset)
                    self.assertEqual(shape, "[" + ", ".join(map(str, f[dataset].shape)) + "]", dataset)

        # --config: the stored resolved config, which is the run's config.toml.
        r = run_strata("inspect", self.ckpt, "--config")
        self.check_ok(r)
        with open(self.out_dir / "config.toml", "rb") as f:
            self.assertEqual(tomllib.loads(r.stdout), tomllib.load(f))

    def test_inspect_names_a_damaged_tensor(self):
        bad = self.damaged_copy("params/h.1.mlp.c_fc.weight", (3, 5))
        r = run_strata("inspect", bad)
        line = self.one_error_line(r)
        self.assertIn(str(bad), line)
        self.assertIn("'params/h.1.mlp.c_fc.weight'", line)
        self.assertEqual(r.stdout.splitlines()[-1], "checksums: 1 mismatches (first: params/h.1.mlp.c_fc.weight)")
        self.assertRegex(r.stdout, r"(?m)^params/h\.1\.mlp\.c_fc\.weight .* MISMATCH \(computed [0-9a-f]{16}\)$")
        self.assertEqual(r.stdout.count("MISMATCH"), 1)
        # --no-verify reads no data: the listing succeeds.
        quick = run_strata("inspect", bad, "--no-verify")
        self.check_ok(quick)
        self.assertEqual(quick.stdout.splitlines()[-1], "checksums: not verified (--no-verify)")

        # A truncated file: one line naming it.
        cut = self.case / "cut.h5"
        data = self.ckpt.read_bytes()
        cut.write_bytes(data[:len(data) * 2 // 3])
        self.assertIn(str(cut), self.one_error_line(run_strata("inspect", cut)))
        self.assertIn("nope.h5", self.one_error_line(run_strata("inspect", self.case / "nope.h5")))

    # (c) strata export into PyTorch.
    def test_exports_load_into_pytorch_with_identical_logits(self):
        st, h5 = self.case / "model.safetensors", self.case / "model.h5"
        r = run_strata("export", self.ckpt, "--format", "safetensors", "-o", st)
        self.check_ok(r)
        self.assertIn(f"wrote {st}", r.stdout)
        self.check_ok(run_strata("export", self.ckpt_dir, "--format", "hdf5", "--output", h5))
        self.assertEqual(sorted(p.name for p in self.case.iterdir()), ["model.h5", "model.safetensors"])

        metadata, tensors, header_len = load_safetensors(st)
        self.assertEqual((8 + header_len) % 8, 0)
        self.assertEqual(metadata["step"], str(STEPS))
        cfg = {k: int(metadata[k]) for k in ("n_layer", "n_head", "d_model", "vocab_size", "seq_len")}
        self.assertEqual(cfg, MODEL)
        self.assertEqual({k: tuple(v.shape) for k, v in tensors.items()}, tensor_shapes(**MODEL))
        from_st = torch_gpt.GPT(**cfg)
        from_st.load_state_dict(tensors, strict=True)  # the names are torch_gpt's parameter names
        from_h5, h5_cfg = torch_gpt.load_strata_weights(str(h5))
        self.assertEqual(h5_cfg, dict(MODEL, d_head=0, d_mlp=0))  # the widths: GPT-2's defaults
        with h5py.File(self.ckpt, "r") as f:
            for name, t in tensors.items():
                np.testing.assert_array_equal(t.numpy(), f[f"params/{name}"][...], name)

        tokens = torch.tensor([list(b"the cat sat on the mat.\n"), list(b"a big red dog ran to the")])
        with torch.no_grad():
            a, b = from_st(tokens), from_h5(tokens)
        self.assertEqual(tuple(a.shape), (2, tokens.shape[1], MODEL["vocab_size"]))
        self.assertTrue(torch.isfinite(a).all())
        self.assertTrue(torch.equal(a, b), f"logits differ by up to {(a - b).abs().max().item():.3g}")

        # strata eval reads the HDF5 export, and it evaluates like the weights the run saved itself.
        losses = []
        for weights in (h5, self.out_dir / "weights.h5"):
            e = run_strata("eval", "--config", self.out_dir / "config.toml", "--weights", weights)
            self.check_ok(e)
            m = re.search(r"val loss ([0-9.eE+-]+) over (\d+) tokens", e.stdout)
            self.assertIsNotNone(m, e.stdout)
            losses.append(float(m.group(1)))
        self.assertTrue(math.isfinite(losses[0]) and 0 < losses[0] < math.log(257) + 1, losses)
        self.assertEqual(losses[0], losses[1])

    def test_export_refuses_damaged_checkpoints_and_unknown_formats(self):
        bad = self.damaged_copy("params/wpe", (0, 0))
        for fmt in ("safetensors", "hdf5"):
            out = self.case / f"out.{fmt}"
            line = self.one_error_line(run_strata("export", bad, "--format", fmt, "-o", out))
            self.assertIn(str(bad), line)
            self.assertIn("'params/wpe'", line)
            self.assertFalse(out.exists())
            self.assertFalse(list(self.case.glob(f"out.{fmt}.*tmp")), "temporary left behind")
        r = run_strata("export", self.ckpt, "--format", "onnx", "-o", self.case / "x.onnx")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("safetensors", r.stderr)
        self.assertIn("hdf5", r.stderr)
        self.assertFalse((self.case / "x.onnx").exists())


if __name__ == "__main__":
    unittest.main()
