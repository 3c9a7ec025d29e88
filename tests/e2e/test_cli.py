#!/usr/bin/python3
"""End-to-end tests of the `strata` command: preprocess, train, eval, config, and rejection of bad input.

Self-contained: every test builds its own data in its own temporary directory and runs the real binary.
The binary comes from $STRATA_BIN (ctest sets it), else build/default/strata under the repository root.
Run: /usr/bin/python3 tests/e2e/test_cli.py [-v] [TestClass.test_name]
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[2]
STRATA = os.environ.get("STRATA_BIN") or str(REPO / "build" / "default" / "strata")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
EOT = 256

# The tiny model of the training tests.
TINY = {
    "model.n_layer": 2,
    "model.n_head": 2,
    "model.d_model": 32,
    "model.vocab_size": 257,
    "model.seq_len": 32,
    "train.batch_size": 8,
    "train.steps": 60,
    "train.lr": 3e-3,
    "train.warmup_steps": 5,
    "train.eval_every": 30,
    "train.eval_batches": 4,
}


def run_strata(*args, cwd=None, timeout=300):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    return subprocess.run([STRATA, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def set_args(values):
    out = []
    for k, v in values.items():
        out += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return out


def write_config(path, values):
    """Writes a TOML file from a flat {"section.key": value} dict."""
    sections = {}
    for k, v in values.items():
        s, name = k.split(".", 1)
        sections.setdefault(s, []).append(f"{name} = {toml_value(v)}")
    Path(path).write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items()))
    return str(path)


def write_tokens(path, train, val, vocab_size=257, eot_id=EOT, dtype=np.int32, **extra_attrs):
    """A token dataset written with h5py as docs/dataset-format.md shows."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format="strata-tokens", format_version=np.int64(1), vocab_size=np.int64(vocab_size),
                       eot_id=np.int64(eot_id), tokenizer="byte")
        f.attrs.update(extra_attrs)
        f["train/tokens"] = np.asarray(train).astype(dtype)
        if val is not None:
            f["val/tokens"] = np.asarray(val).astype(dtype)
    return str(path)


def read_metrics(path):
    steps, evals = [], []
    for line in Path(path).read_text().splitlines():
        j = json.loads(line)
        (evals if "val_loss" in j else steps).append(j)
    return steps, evals


def split_documents(tokens):
    """Byte-level tokens -> list of documents (bytes); every document must end with EOT."""
    tokens = [int(t) for t in tokens]
    assert not tokens or tokens[-1] == EOT, "split does not end with end-of-text"
    docs, cur = [], []
    for t in tokens:
        if t == EOT:
            docs.append(bytes(cur))
            cur = []
        else:
            assert 0 <= t < 256, t
            cur.append(t)
    return docs


def is_subsequence(sub, seq):
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


def repetitive_text(n_docs=400, seed=0):
    """Generated text with plenty of structure for a tiny model to learn quickly."""
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "big", "red", "house", "and", "then"]
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(5, 25))
        docs.append(" ".join(rng.choice(words, n)) + ".\n")
    return docs


def text_dataset(directory):
    """Preprocesses 300 repetitive documents into DIRECTORY/d.h5 (byte level) and returns its path."""
    text = Path(directory) / "t.txt"
    text.write_text("%\n".join(repetitive_text(300)))
    data = str(Path(directory) / "d.h5")
    r = run_strata("preprocess", "text", text, "-o", data, "--doc-separator", "%", "--quiet")
    assert r.returncode == 0, f"preprocess failed:\n{r.stderr[-2000:]}"
    return data


class StrataTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="strata-e2e-")
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def check_ok(self, r):
        self.assertEqual(r.returncode, 0, f"strata failed (rc {r.returncode}):\nstdout:\n{r.stdout[-3000:]}\n"
                                          f"stderr:\n{r.stderr[-3000:]}")

    def images_dataset(self, name, x, y, val_fraction, num_classes=0):
        """`strata preprocess images` of arrays x [N, C, H, W], y [N] into self.tmp / name; returns its path."""
        np.save(self.tmp / f"{name}-x.npy", x)
        np.save(self.tmp / f"{name}-y.npy", np.asarray(y, dtype=np.int64))
        self.check_ok(run_strata("preprocess", "images", "--x", self.tmp / f"{name}-x.npy", "--y",
                                 self.tmp / f"{name}-y.npy", "-o", self.tmp / name, "--val-fraction", val_fraction,
                                 "--num-classes", num_classes, "--quiet"))
        return str(self.tmp / name)

    def mpi_error_line(self, r):
        """The one error every rank reports (under MPI tagged " [rank R, FILE:LINE]"), before any training step."""
        self.assertNotEqual(r.returncode, 0, r.stdout[-2000:])
        errors = {re.sub(r" \[rank \d+, [^]]*\]$", "", l) for l in r.stderr.splitlines() if l.startswith("strata: error:")}
        self.assertEqual(len(errors), 1, f"expected one error line:\n{r.stderr[-3000:]}")
        self.assertNotRegex(r.stdout, r"(?m)^step ", "training started")
        return errors.pop()

    def training_dataset(self):
        """Real fortunes when installed, else generated repetitive text; returns the dataset path."""
        out = self.tmp / "corpus.h5"
        if FORTUNES_DIR.is_dir():
            r = subprocess.run(["bash", str(REPO / "data" / "fortunes.sh"), str(out), STRATA], cwd=self.tmp,
                               capture_output=True, text=True, timeout=120)
            self.check_ok(r)
        else:
            text = self.tmp / "generated.txt"
            text.write_text("%\n".join(repetitive_text()))
            self.check_ok(run_strata("preprocess", "text", text, "--output", out, "--doc-separator", "%",
                                     "--val-fraction", "0.1", "--seed", "1"))
        return str(out)


class PreprocessTest(StrataTestCase):
    def test_documents_round_trip(self):
        # Two files; separator lines with a trailing \r, empty documents, non-ASCII bytes, a final
        # document without a newline, a document opening with a blank line.
        (self.tmp / "a.txt").write_bytes(b"first doc\nline two\n%\nsecond \xc3\xa9\n%\r\n%\nthird no newline at end")
        (self.tmp / "b.txt").write_bytes(b"%\nfourth\n%\n\nfifth after blank\n%\nsixth\ttab\n")
        expected = [b"first doc\nline two\n", b"second \xc3\xa9\n", b"third no newline at end", b"fourth\n",
                    b"\nfifth after blank\n", b"sixth\ttab\n"]
        out = self.tmp / "out" / "p.h5"
        out.parent.mkdir()
        r = run_strata("preprocess", "text", "a.txt", "b.txt", "--output", out, "--doc-separator", "%",
                       "--val-fraction", "0.34", "--seed", "3", "--no-clean", cwd=self.tmp)
        self.check_ok(r)
        self.assertEqual(sorted(os.listdir(out.parent)), ["p.h5"], "temporary file left behind")
        with h5py.File(out, "r") as f:
            self.assertEqual(f.attrs["format"], "strata-tokens")
            self.assertEqual(int(f.attrs["format_version"]), 1)
            self.assertEqual(int(f.attrs["vocab_size"]), 257)
            self.assertEqual(int(f.attrs["eot_id"]), 256)
            self.assertEqual(f.attrs["tokenizer"], "byte")
            self.assertEqual(f["train/tokens"].dtype, np.uint16)
            self.assertEqual(f["train/tokens"].ndim, 1)
            train = split_documents(f["train/tokens"][:])
            val = split_documents(f["val/tokens"][:])
            n_train_tokens, n_val_tokens = len(f["train/tokens"]), len(f["val/tokens"])
        self.assertEqual(sorted(train + val), sorted(expected))
        self.assertEqual(len(val), round(6 * 0.34))  # n_val = clamp(round(n * f), 1, n - 1) = 2
        self.assertTrue(is_subsequence(train, expected), f"train split not in corpus order: {train}")
        self.assertTrue(is_subsequence(val, expected), f"val split not in corpus order: {val}")
        m = re.search(r"(\d+) documents \((\d+) train, (\d+) val\).*, (\d+) train tokens, (\d+) val tokens", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual([int(x) for x in m.groups()], [6, len(train), len(val), n_train_tokens, n_val_tokens])

        # Same seed: the same split, byte for byte.
        again = self.tmp / "again.h5"
        self.check_ok(run_strata("preprocess", "text", "a.txt", "b.txt", "--output", again, "--doc-separator", "%", "--no-clean",
                                 "--val-fraction", "0.34", "--seed", "3", cwd=self.tmp))
        with h5py.File(out, "r") as f, h5py.File(again, "r") as g:
            np.testing.assert_array_equal(f["val/tokens"][:], g["val/tokens"][:])
            np.testing.assert_array_equal(f["train/tokens"][:], g["train/tokens"][:])

    def test_without_separator_each_file_is_a_document(self):
        (self.tmp / "x.txt").write_bytes(b"one\n%\nstill one\n")
        (self.tmp / "y.txt").write_bytes(b"two")
        out = self.tmp / "p.h5"
        self.check_ok(run_strata("preprocess", "text", "x.txt", "y.txt", "--output", out, "--no-clean", cwd=self.tmp))
        with h5py.File(out, "r") as f:
            docs = split_documents(f["train/tokens"][:]) + split_documents(f["val/tokens"][:])
        self.assertEqual(sorted(docs), sorted([b"one\n%\nstill one\n", b"two"]))

    @unittest.skipUnless(FORTUNES_DIR.is_dir(), f"{FORTUNES_DIR} missing (apt-get install fortunes)")
    def test_fortunes_recipe(self):
        out = self.tmp / "sub" / "fortunes.h5"
        r = subprocess.run(["bash", str(REPO / "data" / "fortunes.sh"), str(out), STRATA], cwd=self.tmp,
                           capture_output=True, text=True, timeout=120)
        self.check_ok(r)
        with h5py.File(out, "r") as f:
            self.assertEqual(int(f.attrs["vocab_size"]), 257)
            train = f["train/tokens"][:]
            val = f["val/tokens"][:]
        n_train, n_val = int((train == EOT).sum()), int((val == EOT).sum())
        self.assertGreater(n_train, 1000)
        self.assertGreater(n_val, 10)
        self.assertEqual(n_val, min(max(round((n_train + n_val) * 0.05), 1), n_train + n_val - 1))
        self.assertEqual(train[-1], EOT)
        self.assertEqual(val[-1], EOT)
        self.assertLess(int(train.max()), 257)
        m = re.search(r"(\d+) documents \((\d+) train, (\d+) val\)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual([int(x) for x in m.groups()], [n_train + n_val, n_train, n_val])


class ProgressTest(StrataTestCase):
    """Long commands show progress lines (with an ETA) on stderr when asked (--progress) or on a terminal, and none
    in batch logs (stderr not a terminal) or with --quiet. STRATA_PROGRESS_INTERVAL_S=0 makes these small jobs print."""

    def run_with(self, *args):
        env = dict(os.environ, STRATA_PROGRESS_INTERVAL_S="0", OPENBLAS_NUM_THREADS="1")
        return subprocess.run([STRATA, *map(str, args)], env=env, capture_output=True, text=True, errors="replace",
                              timeout=300)

    def test_progress_when_asked_quiet_in_batch_logs(self):
        text = self.tmp / "t.txt"
        text.write_text("%\n".join(repetitive_text(300)))
        data = self.tmp / "sharded"
        r = self.run_with("preprocess", "text", text, "-o", data, "--doc-separator", "%", "--shards", "3",
                          "--progress")
        self.check_ok(r)
        self.assertRegex(r.stderr, r"preprocess \(rank 0 of 1\): cleaning: \d+ docs of 300 \(\d+%\)")
        checks = {"verify": (["dataset", "verify", data], r"verify: \d+ tokens of 17353 \(\d+%\), [\d.e+]+ tokens/s, "
                                                          r"(ETA \S+|done in)")}
        cfg = write_config(self.tmp / "c.toml", {"model.n_layer": 1, "model.n_head": 2, "model.d_model": 16,
                                                 "model.vocab_size": 257, "model.seq_len": 16, "data.path": str(data),
                                                 "train.steps": 2, "train.batch_size": 4, "checkpoint.every": 2,
                                                 "train.out_dir": str(self.tmp / "run"), "train.tensorboard": False})
        self.check_ok(run_strata("train", "--config", cfg))
        ckpt = self.tmp / "run" / "checkpoints" / "step-00000002.h5"
        checks["inspect"] = (["inspect", ckpt], r"inspect: verifying: \d+ tensors of \d+ \(\d+%\)")
        checks["export"] = (["export", ckpt, "--format", "safetensors", "-o", self.tmp / "m.safetensors"], r"export: \d+ tensors of \d+")
        for name, (args, line) in checks.items():
            with self.subTest(command=name):
                loud = self.run_with(*args, "--progress")
                self.check_ok(loud)
                self.assertRegex(loud.stderr, line)
                self.assertRegex(loud.stderr, r"done in [\d.]+ s")
                for quiet in (self.run_with(*args), self.run_with(*args, "--quiet")):  # stderr is a pipe here
                    self.check_ok(quiet)
                    self.assertNotRegex(quiet.stderr, line)
                    self.assertNotIn("done in", quiet.stderr)


class TrainTest(StrataTestCase):
    def test_train_save_eval_sample(self):
        data = self.training_dataset()
        out_dir = self.tmp / "run"
        cfg = write_config(self.tmp / "base.toml", {"data.path": data, "train.log_every": 10})
        values = dict(TINY, **{"train.out_dir": str(out_dir), "train.save_weights": "weights.h5",
                               "train.sample_tokens": 50})
        r = run_strata("train", "--config", cfg, *set_args(values), cwd=self.tmp)
        self.check_ok(r)

        # metrics.jsonl: 60 consecutive step lines with finite values, eval lines at 30 and 60.
        steps, evals = read_metrics(out_dir / "metrics.jsonl")
        self.assertEqual([s["step"] for s in steps], list(range(1, 61)))
        for s in steps:
            self.assertEqual(set(s), {"step", "loss", "lr", "grad_norm", "tokens_per_s", "ms", "comm_ms", "data_wait_ms"})
            for k, v in s.items():
                self.assertTrue(isinstance(v, (int, float)) and math.isfinite(v), f"step {s['step']}: {k} = {v}")
            self.assertGreater(s["lr"], 0)
            self.assertGreater(s["tokens_per_s"], 0)
        self.assertAlmostEqual(steps[0]["lr"], 3e-3 / 5, delta=1e-9)  # warm-up: lr * 1 / warmup_steps
        self.assertAlmostEqual(max(s["lr"] for s in steps), 3e-3, delta=1e-9)
        losses = [s["loss"] for s in steps]
        self.assertLess(abs(losses[0] - math.log(257)), 0.5, "initial loss far from ln(vocab)")
        first, last = np.mean(losses[:5]), np.mean(losses[-10:])
        self.assertLess(last, first - 0.5, f"loss did not fall: first 5 {first:.3f}, last 10 {last:.3f}")
        self.assertEqual([e["step"] for e in evals], [30, 60])
        for e in evals:
            self.assertEqual(set(e), {"step", "val_loss", "val_tokens"})
            self.assertEqual(e["val_tokens"], 4 * 8 * 32)  # eval_batches * batch_size * seq_len
            self.assertTrue(math.isfinite(e["val_loss"]))
            self.assertLess(e["val_loss"], losses[0] - 0.5)
        # stdout agrees with the JSON lines.
        printed = [float(x) for x in re.findall(r"^eval .*\| val loss ([0-9.]+) \|", r.stdout, re.M)]
        self.assertEqual(len(printed), 2, r.stdout)
        for p, e in zip(printed, evals):
            self.assertAlmostEqual(p, e["val_loss"], delta=6e-5)
        done = [line for line in r.stdout.splitlines() if line.startswith("done:")]
        self.assertEqual(len(done), 1, r.stdout)
        m = re.match(r"done: (\d+) steps, loss ([0-9.]+) -> ([0-9.]+), val loss ([0-9.]+)", done[0])
        self.assertIsNotNone(m, done[0])
        self.assertEqual(int(m.group(1)), 60)
        self.assertAlmostEqual(float(m.group(2)), losses[0], delta=6e-5)
        self.assertAlmostEqual(float(m.group(3)), losses[-1], delta=6e-5)
        self.assertAlmostEqual(float(m.group(4)), evals[-1]["val_loss"], delta=6e-5)

        # config.toml: the resolved config, with the --set values and the file's values.
        with open(out_dir / "config.toml", "rb") as f:
            resolved = tomllib.load(f)
        self.assertEqual(set(resolved), {"model", "data", "train", "parallel", "checkpoint", "distill", "prune", "guard", "watchdog"})
        for key, want in dict(values, **{"data.path": data, "train.log_every": 10}).items():
            section, name = key.split(".")
            self.assertEqual(resolved[section][name], want, key)
        self.assertEqual(resolved["parallel"], {"dp": 1, "tp": 1, "pp": 1, "zero1": False, "schedule": "1f1b",
                                                "bucket_mb": 16, "device_comm": "auto"})

        # Weights: every tensor with its shape, trained (not the initial values).
        C, V, T, L = 32, 257, 32, 2
        shapes = {"wte": (V, C), "wpe": (T, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
        for i in range(L):
            shapes.update({f"h.{i}.ln_1.weight": (C,), f"h.{i}.ln_1.bias": (C,),
                           f"h.{i}.attn.c_attn.weight": (3 * C, C), f"h.{i}.attn.c_attn.bias": (3 * C,),
                           f"h.{i}.attn.c_proj.weight": (C, C), f"h.{i}.attn.c_proj.bias": (C,),
                           f"h.{i}.ln_2.weight": (C,), f"h.{i}.ln_2.bias": (C,),
                           f"h.{i}.mlp.c_fc.weight": (4 * C, C), f"h.{i}.mlp.c_fc.bias": (4 * C,),
                           f"h.{i}.mlp.c_proj.weight": (C, 4 * C), f"h.{i}.mlp.c_proj.bias": (C,)})
        weights = out_dir / "weights.h5"
        with h5py.File(weights, "r") as f:
            self.assertEqual(f.attrs["format"], "strata-weights")
            for name, want in {"n_layer": L, "n_head": 2, "d_model": C, "vocab_size": V, "seq_len": T}.items():
                self.assertEqual(int(f.attrs[name]), want, name)
            found = {}
            f.visititems(lambda name, obj: found.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset)
                         else None)
            self.assertEqual(found, shapes)
            for name in shapes:
                self.assertTrue(np.isfinite(f[name][()]).all(), name)
            self.assertGreater(np.abs(f["ln_f.weight"][()] - 1).max(), 1e-4, "ln_f.weight never updated")
            self.assertGreater(np.abs(f["h.0.attn.c_attn.bias"][()]).max(), 1e-4, "bias never updated")
        self.assertNotIn(".tmp", " ".join(os.listdir(out_dir)))

        # Sample: printed between the markers.
        m = re.search(r"^--- sample \(50 tokens[^\n]*---\n(.*)\n--- end of sample ---$", r.stdout, re.M | re.S)
        self.assertIsNotNone(m, r.stdout[-2000:])
        self.assertGreater(len(m.group(1).strip()), 0)
        self.assertLess(r.stdout.index("--- end of sample ---"), r.stdout.index("done:"))

        # strata eval on the saved weights reproduces the trainer's final validation loss.
        e = run_strata("eval", "--config", out_dir / "config.toml", "--weights", weights, cwd=self.tmp)
        self.check_ok(e)
        m = re.search(r"val loss ([0-9.eE+-]+) over (\d+) tokens", e.stdout)
        self.assertIsNotNone(m, e.stdout)
        self.assertEqual(int(m.group(2)), evals[-1]["val_tokens"])
        self.assertLess(abs(float(m.group(1)) - evals[-1]["val_loss"]), 1e-5 * evals[-1]["val_loss"],
                        f"eval {m.group(1)} vs trainer {evals[-1]['val_loss']}")
        # ... and rejects weights of another shape, naming the field.
        bad = run_strata("eval", "--config", out_dir / "config.toml", "--weights", weights, "--set",
                         "model.d_model=64", cwd=self.tmp)
        self.assertNotEqual(bad.returncode, 0)
        line = self.one_error_line(bad)
        self.assertIn("d_model", line)
        self.assertIn(str(weights), line)

    def one_error_line(self, r):
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got:\n{r.stderr}")
        self.assertTrue(lines[0].startswith("strata: error: "), lines[0])
        return lines[0]


class DeterminismTest(StrataTestCase):
    def train_losses(self, data, name, **overrides):
        values = dict(TINY, **{"data.path": data, "train.out_dir": str(self.tmp / name), "train.eval_every": 0,
                               "train.eval_batches": 1})
        values.update(overrides)
        cfg = write_config(self.tmp / f"{name}.toml", values)
        self.check_ok(run_strata("train", "--config", cfg, cwd=self.tmp))
        steps, _ = read_metrics(self.tmp / name / "metrics.jsonl")
        return [s["loss"] for s in steps], [s["grad_norm"] for s in steps]

    def test_identical_runs_are_bit_identical(self):
        text = self.tmp / "t.txt"
        text.write_text("%\n".join(repetitive_text(200)))
        data = str(self.tmp / "d.h5")
        self.check_ok(run_strata("preprocess", "text", text, "--output", data, "--doc-separator", "%"))
        a = self.train_losses(data, "a", **{"train.steps": 20})
        b = self.train_losses(data, "b", **{"train.steps": 20})
        self.assertEqual(len(a[0]), 20)
        self.assertEqual(a, b)  # floats parsed from the JSON: exact equality
        # The comparison can fail: another init seed or shuffle seed changes the losses.
        self.assertNotEqual(a[0], self.train_losses(data, "c", **{"train.steps": 20, "train.seed": 7})[0])
        self.assertNotEqual(a[0], self.train_losses(data, "d", **{"train.steps": 20, "data.seed": 7})[0])

    def test_sharded_dataset_trains_like_the_single_file(self):
        # The same corpus preprocessed into one file and into 3 shards per split: the windows are the same, so
        # the losses are bit-identical; eval reads the sharded form too.
        text = self.tmp / "t.txt"
        text.write_text("%\n".join(repetitive_text(200)))
        single, sharded = str(self.tmp / "one.h5"), str(self.tmp / "shards")
        self.check_ok(run_strata("preprocess", "text", text, "--output", single, "--doc-separator", "%"))
        self.check_ok(run_strata("preprocess", "text", text, "--output", sharded, "--doc-separator", "%",
                                 "--shards", 3))
        self.assertTrue(os.path.exists(os.path.join(sharded, "manifest.json")))
        self.assertEqual(len([f for f in os.listdir(sharded) if f.endswith(".h5")]), 6)
        a = self.train_losses(single, "one", **{"train.steps": 12})
        b = self.train_losses(sharded, "sh", **{"train.steps": 12})
        self.assertEqual(a, b)

    def test_unshuffled_order(self):
        # shuffle = false: step s reads windows s*B .. s*B+B-1 (docs/dataset-format.md). Window i covers tokens
        # [i*T, i*T+T]. Changing one token shows which step first reads it: the loss of that step changes and
        # every earlier step stays bit-identical.
        T, B, steps = 32, 8, 4
        rng = np.random.default_rng(5)
        train = rng.integers(0, 256, size=64 * T + 1)
        val = rng.integers(0, 256, size=10 * T + 1)

        def variant(name, index=None):
            t = train.copy()
            if index is not None:
                t[index] = (t[index] + 1) % 256
            return write_tokens(self.tmp / f"{name}.h5", t, val)

        common = {"data.shuffle": False, "train.steps": steps}
        base, _ = self.train_losses(variant("base"), "base", **common)
        self.assertEqual(len(base), steps)
        # (token index, first step whose loss must change; steps + 1: none of the first `steps`)
        cases = [(5, 1), (8 * T - 3, 1), (8 * T + 3, 2), (2 * B * T + 7, 3), (31 * T + 5, 4), (32 * T + 1, 5),
                 (50 * T, 5)]
        for index, first_changed in cases:
            losses, _ = self.train_losses(variant(f"v{index}", index), f"run{index}", **common)
            with self.subTest(token=index, window=index // T):
                self.assertEqual(losses[:first_changed - 1], base[:first_changed - 1])
                if first_changed <= steps:
                    self.assertNotEqual(losses[first_changed - 1], base[first_changed - 1])


class BadInputTest(StrataTestCase):
    """Bad input is rejected before any work: one error line naming the field or file, no out_dir."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.good = write_tokens(self.tmp / "good.h5", rng.integers(0, 256, 2000), rng.integers(0, 256, 500))
        self.out_dir = self.tmp / "never"

    def config(self, text=None, **values):
        path = self.tmp / "bad.toml"
        if text is None:
            base = dict(TINY, **{"data.path": self.good, "train.out_dir": str(self.out_dir), "train.steps": 2})
            base.update(values)
            write_config(path, base)
        else:
            path.write_text(text)
        return str(path)

    def assert_rejected(self, args, *must_contain):
        r = run_strata(*args, cwd=self.tmp)
        self.assertNotEqual(r.returncode, 0, f"accepted:\n{r.stdout[-2000:]}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected exactly one line on stderr, got {len(lines)}:\n{r.stderr}")
        self.assertTrue(lines[0].startswith("strata: error: "), lines[0])
        for s in must_contain:
            self.assertIn(str(s), lines[0])
        self.assertFalse(self.out_dir.exists(), "out_dir created before the input was checked")
        self.assertNotIn("step", r.stdout)
        return lines[0]

    def train(self, cfg, **sets):
        return ["train", "--config", cfg, *set_args(sets)]

    def test_head_does_not_divide_d_model(self):
        self.assert_rejected(self.train(self.config(), **{"model.d_model": 30, "model.n_head": 4}),
                             "model.d_model", "model.n_head", "30", "divisible")

    def test_unknown_key_in_file(self):
        cfg = self.config()
        text = Path(cfg).read_text().replace("[train]\n", "[train]\nlrr = 1\n")
        self.assertIn("lrr = 1", text)
        cfg = self.config(text)
        self.assert_rejected(self.train(cfg), "train.lrr", cfg, "unknown key")

    def test_wrong_type_in_file(self):
        cfg = self.config(Path(self.config()).read_text().replace("lr = 0.003", 'lr = "fast"'))
        self.assertIn('"fast"', Path(cfg).read_text())
        self.assert_rejected(self.train(cfg), "train.lr", "expected a number", cfg)

    def test_wrong_type_on_command_line(self):
        self.assert_rejected(self.train(self.config(), **{"train.batch_size": "8.5"}), "train.batch_size",
                             "expected an integer")

    def test_missing_dataset(self):
        self.assert_rejected(self.train(self.config(**{"data.path": "/nonexistent/x.h5"})), "/nonexistent/x.h5",
                             "not found")

    def test_dataset_is_not_hdf5(self):
        text = self.tmp / "notes.h5"
        text.write_text("this is a text file, not HDF5\n" * 10)
        self.assert_rejected(self.train(self.config(**{"data.path": str(text)})), str(text), "HDF5")

    def test_token_id_out_of_range(self):
        tokens = np.arange(400) % 40
        tokens[123] = 60
        data = write_tokens(self.tmp / "big_id.h5", tokens, np.arange(400) % 40, vocab_size=50, eot_id=0)
        self.assert_rejected(self.train(self.config(**{"data.path": data, "model.vocab_size": 50})),
                             "token id 60", data, "train/tokens")

    def test_negative_token_id(self):
        tokens = np.arange(400) % 40
        tokens[7] = -1
        data = write_tokens(self.tmp / "neg.h5", np.arange(400) % 40, tokens, vocab_size=50, eot_id=0)
        self.assert_rejected(self.train(self.config(**{"data.path": data, "model.vocab_size": 50})),
                             "-1", data, "val/tokens", "negative")

    def test_dataset_vocab_larger_than_model(self):
        data = write_tokens(self.tmp / "v300.h5", np.arange(400) % 40, np.arange(400) % 40, vocab_size=300,
                            eot_id=0)
        self.assert_rejected(self.train(self.config(**{"data.path": data})), data, "vocab_size", "300", "257")

    def test_float_tokens(self):
        data = write_tokens(self.tmp / "float.h5", np.arange(400) % 40, np.arange(400) % 40, dtype=np.float32)
        self.assert_rejected(self.train(self.config(**{"data.path": data})), data, "train/tokens", "integer")

    def test_missing_split(self):
        data = write_tokens(self.tmp / "noval.h5", np.arange(400) % 40, None)
        self.assert_rejected(self.train(self.config(**{"data.path": data})), data, "val/tokens", "missing")

    def test_split_shorter_than_a_window(self):
        data = write_tokens(self.tmp / "short.h5", np.arange(400) % 40, np.arange(20))
        self.assert_rejected(self.train(self.config(**{"data.path": data})), data, "val", "20", "33")

    def test_unknown_set_key(self):
        self.assert_rejected(self.train(self.config(), **{"train.nope": 1}), "train.nope", "unknown key")

    def test_toml_syntax_error(self):
        cfg = self.config("[model]\nn_layer = 2\n[train\nlr = 1\n")
        self.assert_rejected(self.train(cfg), cfg)

    def test_layout_larger_than_the_job(self):
        self.assert_rejected(self.train(self.config(**{"parallel.dp": 2})), "parallel.dp", "but the job has 1 ranks")

    def test_more_stages_than_layers(self):
        self.assert_rejected(self.train(self.config(**{"parallel.pp": 9})), "parallel.pp = 9", "model.n_layer")

    def test_unknown_schedule(self):
        self.assert_rejected(self.train(self.config(**{"parallel.schedule": "zigzag"})), "parallel.schedule",
                             "1f1b or gpipe")

    def test_preprocess_rejects_missing_input(self):
        out = self.tmp / "p.h5"
        r = run_strata("preprocess", "text", "no_such_file.txt", "--output", out, cwd=self.tmp)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no_such_file.txt", r.stderr)
        self.assertFalse(out.exists())

    def test_preprocess_rejects_single_document(self):
        (self.tmp / "one.txt").write_text("only one\n%\n")
        out = self.tmp / "p.h5"
        r = run_strata("preprocess", "text", "one.txt", "--output", out, "--doc-separator", "%", cwd=self.tmp)
        self.assertNotEqual(r.returncode, 0)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("strata: error: "), lines[0])
        self.assertIn("at least 2", lines[0])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["good.h5", "one.txt"])
        self.assertFalse(out.exists())


class ConfigCommandTest(StrataTestCase):
    def test_doc_lists_every_field(self):
        r = run_strata("config", "--doc")
        self.check_ok(r)
        doc = {}  # "section.key" -> default text; model fields per kind as "model[kind].key"
        section = None
        for line in r.stdout.splitlines():
            header = re.fullmatch(r"\[(\w+)\](?:\s+# kind = \"(\w+)\")?", line)
            if header:
                section = header.group(1) if not header.group(2) else f"{header.group(1)}[{header.group(2)}]"
            elif line.strip():
                m = re.match(r"(\w+)\s*= (.*?)\s+# (.+)$", line)
                self.assertIsNotNone(m, f"not a documented field: {line!r}")
                doc[f"{section}.{m.group(1)}"] = m.group(2)
        for key in ["model[gpt].n_layer", "model[gpt].d_model", "model[cnn].channels", "model[cnn].norm_groups",
                    "model[lstm].cell", "model[lstm].hidden_size", "data.path", "data.shuffle", "train.lr",
                    "train.lr_schedule", "train.eval_batches", "train.save_weights", "train.sample_tokens",
                    "parallel.tp"]:
            self.assertIn(key, doc)
        self.assertNotIn("model[cnn].n_head", doc)  # each kind lists its own fields only
        # Every field of each kind's resolved config is documented, and the documented defaults are the defaults.
        for kind in ["gpt", "cnn", "lstm"]:
            r = run_strata("config", "--set", f"model.kind={kind}")
            self.check_ok(r)
            defaults = tomllib.loads(r.stdout)
            flat = {(f"model[{kind}].{k}" if s == "model" else f"{s}.{k}"): v
                    for s, t in defaults.items() for k, v in t.items()}
            documented = {k for k in doc if not k.startswith("model[") or k.startswith(f"model[{kind}]")}
            self.assertEqual(documented, set(flat), kind)
            for key, v in flat.items():
                self.assertEqual(tomllib.loads(f"x = {doc[key]}")["x"], v, key)

    def test_config_prints_resolved_toml(self):
        cfg = write_config(self.tmp / "c.toml", {"model.n_layer": 3, "model.d_model": 48, "model.n_head": 4,
                                                 "train.lr": 0.1, "train.lr_schedule": "linear"})
        r = run_strata("config", "--config", cfg, "--set", "train.lr=0.5", "--set", "data.shuffle=false")
        self.check_ok(r)
        c = tomllib.loads(r.stdout)
        self.assertEqual(c["train"]["lr"], 0.5)
        self.assertIs(c["data"]["shuffle"], False)
        self.assertEqual(c["model"]["n_layer"], 3)
        self.assertEqual(c["model"]["d_model"], 48)
        self.assertEqual(c["train"]["lr_schedule"], "linear")
        # The printed config is itself a valid config that resolves to the same thing.
        (self.tmp / "round.toml").write_text(r.stdout)
        r2 = run_strata("config", "--config", self.tmp / "round.toml")
        self.check_ok(r2)
        self.assertEqual(tomllib.loads(r2.stdout), c)


class CommandLineTest(StrataTestCase):
    def test_version(self):
        r = run_strata("--version")
        self.check_ok(r)
        self.assertRegex(r.stdout.strip(), r"^strata \d+\.\d+\.\d+")

    def test_no_verb_fails(self):
        r = run_strata()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("subcommand", r.stderr.lower() + r.stdout.lower())

    def test_unknown_verb_fails(self):
        r = run_strata("fly")
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    if not os.access(STRATA, os.X_OK):
        sys.exit(f"test_cli.py: strata binary not found at {STRATA} (set STRATA_BIN)")
    unittest.main(verbosity=2)
