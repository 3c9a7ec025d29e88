#!/usr/bin/python3
"""End-to-end tests of sharded datasets (docs/dataset-format.md): datasets written by h5py train and verify,
MPI-parallel preprocessing gives the same dataset on any number of ranks, BPE datasets train and sample, the
digits image recipe, and bad datasets rejected with one line naming the file.

Run: /usr/bin/python3 tests/e2e/test_datasets.py [-v] [TestClass.test_name]
"""
import json
import os
import shutil
import subprocess
import unittest

import h5py
import numpy as np
import xxhash

from test_cli import REPO, STRATA, TINY, StrataTestCase, read_metrics, repetitive_text, run_strata, write_config

MPIEXEC = shutil.which("mpiexec") or "mpiexec"
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               OPENBLAS_NUM_THREADS="1")


def run_mpi(n, *args, timeout=300):
    return subprocess.run([MPIEXEC, "--oversubscribe", "-np", str(n), STRATA, *map(str, args)], env=MPI_ENV,
                          capture_output=True, text=True, errors="replace", timeout=timeout)


def run_ranks(n, *args, timeout=300):
    """strata ARGS on n ranks: under mpiexec when n > 1, as one process otherwise."""
    if n > 1:
        return run_mpi(n, *args, timeout=timeout)
    return subprocess.run([STRATA, *map(str, args)], env=MPI_ENV, capture_output=True, text=True, errors="replace",
                          timeout=timeout)


def token_hash(ids):
    """The manifest checksum of token ids: XXH64 (seed 0) of the ids as little-endian uint32."""
    return xxhash.xxh64(np.asarray(ids, dtype="<u4").tobytes()).hexdigest()


def array_hash(x, y):
    """The manifest checksum of an array shard: XXH64 of x's bytes (stored dtype, LE) then y as LE int32."""
    h = xxhash.xxh64()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.asarray(y, dtype="<i4").tobytes())
    return h.hexdigest()


def write_h5py_token_dataset(root, splits, vocab_size=257, eot_id=256, dtype=np.int32):
    """A sharded token dataset written with nothing but h5py, json and xxhash. splits: {split: [ids, ...]}."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "strata-dataset", "format_version": 1, "kind": "tokens", "dtype": "uint16",
                "vocab_size": vocab_size, "eot_id": eot_id, "tokenizer": "byte", "splits": {}}
    for split, shards in splits.items():
        entries = []
        for k, ids in enumerate(shards):
            name = f"{split}-{k}.h5"
            with h5py.File(root / name, "w") as f:
                f.attrs.update(format="strata-tokens", format_version=np.int64(1), vocab_size=np.int64(vocab_size),
                               eot_id=np.int64(eot_id), tokenizer="byte")
                f[f"{split}/tokens"] = np.asarray(ids, dtype=dtype)
                other = "val" if split == "train" else "train"
                f[f"{other}/tokens"] = np.zeros(0, dtype=dtype)
            entries.append({"file": name, "tokens": len(ids), "xxh64": token_hash(ids)})
        manifest["splits"][split] = entries
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def write_h5py_image_dataset(root, x, y, num_classes, n_val, shards=2):
    """An `images` dataset written with h5py: x [N, C, H, W] (uint8 or float32), y [N] int."""
    root.mkdir(parents=True, exist_ok=True)
    splits = {"train": (x[n_val:], y[n_val:]), "val": (x[:n_val], y[:n_val])}
    manifest = {"format": "strata-dataset", "format_version": 1, "kind": "images", "dtype": str(x.dtype),
                "sample_shape": list(x.shape[1:]), "label_shape": [], "num_classes": num_classes,
                "normalization": {"mean": [float(np.nanmean(x[n_val:]))], "std": [float(np.nanstd(x[n_val:]))]},
                "splits": {}}
    for split, (xs, ys) in splits.items():
        entries = []
        for k, (xp, yp) in enumerate(zip(np.array_split(xs, shards), np.array_split(ys, shards))):
            name = f"{split}-{k}.h5"
            with h5py.File(root / name, "w") as f:
                f["x"] = xp
                f["y"] = yp.astype(np.int64)  # any integer type is accepted; the checksum hashes it as int32
            entries.append({"file": name, "samples": len(xp), "xxh64": array_hash(xp, yp)})
        manifest["splits"][split] = entries
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return root


def text_tokens(docs, eot=256):
    out = []
    for d in docs:
        out += list(d.encode()) + [eot]
    return out


class H5pyDatasetTest(StrataTestCase):
    def train(self, data, name, **overrides):
        values = dict(TINY, **{"data.path": str(data), "train.out_dir": str(self.tmp / name), "train.eval_every": 0,
                               "train.eval_batches": 2})
        values.update(overrides)
        return run_strata("train", "--config", write_config(self.tmp / f"{name}.toml", values), cwd=self.tmp)

    def test_h5py_written_sharded_tokens_train(self):
        ids = text_tokens(repetitive_text(300))
        cut = len(ids) * 9 // 10
        train, val = ids[:cut], ids[cut:]
        root = write_h5py_token_dataset(self.tmp / "h5py-ds", {"train": [train[: cut // 3], train[cut // 3:]],
                                                               "val": [val]})
        self.check_ok(run_strata("dataset", "verify", root))
        r = self.train(root, "run", **{"train.steps": 40})
        self.check_ok(r)
        steps, evals = read_metrics(self.tmp / "run" / "metrics.jsonl")
        self.assertEqual(len(steps), 40)
        self.assertLess(steps[-1]["loss"], steps[0]["loss"] - 1.0)  # it learned
        self.assertTrue(all("data_wait_ms" in s for s in steps))
        self.assertIn("data: waited for batches", r.stdout)

        # One changed id in a shard: the checksum catches it before training starts, naming the shard.
        with h5py.File(root / "train-1.h5", "r+") as f:
            f["train/tokens"][5] = (int(f["train/tokens"][5]) + 1) % 256
        r = self.train(root, "bad")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("checksum mismatch", r.stderr)
        self.assertIn("train-1.h5", r.stderr)
        self.assertIn("splits.train[1].xxh64", r.stderr)
        self.assertFalse((self.tmp / "bad" / "metrics.jsonl").exists())

    def test_h5py_written_images_verify_and_read(self):
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(60, 1, 6, 5), dtype=np.uint8)
        y = rng.integers(0, 4, size=60)
        root = write_h5py_image_dataset(self.tmp / "img", x, y, num_classes=4, n_val=12)
        r = run_strata("dataset", "verify", root)
        self.check_ok(r)
        self.assertIn("48 samples", r.stdout)
        r = run_strata("dataset", "bench", root, "--batch", 8, "--steps", 20, "--crop-padding", 1, "--flip",
                       "--noise-std", 0.1)
        self.check_ok(r)
        self.assertGreater(json.loads(r.stdout.strip().splitlines()[-1])["samples_per_s"], 0)

    def test_bad_image_datasets_are_named(self):
        rng = np.random.default_rng(1)
        x = rng.random((20, 1, 4, 4), dtype=np.float32)
        y = rng.integers(0, 3, size=20)
        cases = {}
        # NaN in float images (checksum recomputed so only the NaN check can catch it).
        bad = x.copy()
        bad[13, 0, 2, 1] = np.nan
        cases["nan"] = (bad, y, ["not finite", "sample"])
        # A label out of range.
        bad_y = y.copy()
        bad_y[15] = 7
        cases["label"] = (x, bad_y, ["label 7", "num_classes 3"])
        for name, (xs, ys, fragments) in cases.items():
            root = write_h5py_image_dataset(self.tmp / name, xs, ys, num_classes=3, n_val=4, shards=1)
            r = run_strata("dataset", "verify", root)
            self.assertNotEqual(r.returncode, 0, name)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn("train-0.h5", r.stderr)
            for frag in fragments:
                self.assertIn(frag, r.stderr, name)
        # x stored as float64 while the manifest says float32: wrong dtype.
        root = write_h5py_image_dataset(self.tmp / "dtype", x, y, num_classes=3, n_val=4, shards=1)
        with h5py.File(root / "val-0.h5", "r+") as f:
            data = f["x"][:]
            del f["x"]
            f["x"] = data.astype(np.float64)
        r = run_strata("dataset", "verify", root)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("val-0.h5: x stores float64", r.stderr)
        self.assertIn("wrong dtype", r.stderr)
        # Truncated shard file.
        root = write_h5py_image_dataset(self.tmp / "trunc", x, y, num_classes=3, n_val=4, shards=1)
        path = root / "train-0.h5"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        r = run_strata("dataset", "verify", root)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("train-0.h5", r.stderr)
        # An empty split.
        root = write_h5py_image_dataset(self.tmp / "empty", x, y, num_classes=3, n_val=4, shards=1)
        m = json.loads((root / "manifest.json").read_text())
        m["splits"]["val"][0]["samples"] = 0
        (root / "manifest.json").write_text(json.dumps(m))
        r = run_strata("dataset", "verify", root)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("manifest.json: split 'val' is empty", r.stderr)


class ParallelPreprocessTest(StrataTestCase):
    def test_any_rank_count_writes_the_same_dataset(self):
        text = self.tmp / "t.txt"
        docs = repetitive_text(500, seed=3) + repetitive_text(50, seed=3)  # 50 exact duplicates to drop
        text.write_text("%\n".join(docs))
        self.check_ok(run_strata("preprocess", "bpe-train", text, "--doc-separator", "%", "--vocab-size", 300,
                                 "-o", self.tmp / "bpe.json"))
        outputs = {}
        for n in (1, 3):
            d = self.tmp / f"sharded-np{n}"
            r = run_mpi(n, "preprocess", "text", text, "--doc-separator", "%", "--bpe", self.tmp / "bpe.json",
                        "--shards", 4, "-o", d, "--quiet")
            self.check_ok(r)
            self.assertIn("50 duplicates dropped", r.stdout)
            f = self.tmp / f"one-np{n}.h5"
            self.check_ok(run_mpi(n, "preprocess", "text", text, "--doc-separator", "%", "-o", f, "--quiet"))
            with h5py.File(f, "r") as h:
                outputs[n] = (json.loads((d / "manifest.json").read_text()), h["train/tokens"][:], h["val/tokens"][:])
        m1, m3 = outputs[1][0], outputs[3][0]
        self.assertEqual(m1, m3)  # same shards, counts and checksums
        self.assertEqual(len(m1["splits"]["train"]), 4)
        np.testing.assert_array_equal(outputs[1][1], outputs[3][1])
        np.testing.assert_array_equal(outputs[1][2], outputs[3][2])

    def test_bpe_dataset_trains_and_samples_text(self):
        text = self.tmp / "t.txt"
        text.write_text("%\n".join(repetitive_text(400)))
        self.check_ok(run_strata("preprocess", "bpe-train", text, "--doc-separator", "%", "--vocab-size", 320,
                                 "-o", self.tmp / "bpe.json"))
        self.check_ok(run_strata("preprocess", "text", text, "--doc-separator", "%", "--bpe", self.tmp / "bpe.json",
                                 "--shards", 2, "-o", self.tmp / "ds"))
        values = dict(TINY, **{"data.path": str(self.tmp / "ds"), "model.vocab_size": 320, "train.steps": 60,
                               "train.out_dir": str(self.tmp / "run"), "train.eval_every": 0, "train.sample_tokens": 40})
        r = run_strata("train", "--config", write_config(self.tmp / "c.toml", values), cwd=self.tmp)
        self.check_ok(r)
        sample = r.stdout.split("--- sample", 1)[1].split("--- end of sample ---")[0].split("\n", 1)[1]
        words = {"the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "big", "red", "house", "and", "then"}
        found = [w.strip(".\n") for w in sample.split() if w.strip(".\n") in words]
        self.assertGreater(len(found), 3, sample)  # decoded BPE text, not ids


class DigitsRecipeTest(StrataTestCase):
    def test_digits_recipe_builds_a_verified_image_dataset(self):
        out = self.tmp / "digits"
        r = subprocess.run(["bash", str(REPO / "data" / "digits.sh"), str(out), STRATA], cwd=self.tmp,
                           capture_output=True, text=True, timeout=300)
        self.check_ok(r)
        m = json.loads((out / "manifest.json").read_text())
        self.assertEqual(m["kind"], "images")
        self.assertEqual(m["sample_shape"], [1, 8, 8])
        self.assertEqual(m["num_classes"], 10)
        n = sum(e["samples"] for s in m["splits"].values() for e in s)
        self.assertEqual(n, 1797)
        self.check_ok(run_strata("dataset", "verify", out))
        r = run_mpi(2, "dataset", "bench", out, "--batch", 64, "--steps", 30, "--crop-padding", 1, "--flip")
        self.check_ok(r)
        self.assertEqual(json.loads(r.stdout.strip().splitlines()[-1])["ranks"], 2)


if __name__ == "__main__":
    unittest.main()
