#!/usr/bin/python3
"""A multi-step `strata train` run of a classifier follows its PyTorch twin (perf/torch_classifiers.py).

For model.kind = cnn and lstm (and gru with per-step labels): builds a small dataset with `strata preprocess`,
has Strata save its initial weights (train.steps = 0), trains N steps through the real trainer (warm-up + cosine
schedule, AdamW with weight decay on the weights only, gradient clipping, the manifest's normalization, the
sampler's order without shuffling), then replays the same N steps with the twin from the same weights on the
same batches and the same learning rates, and compares the loss of every step (relative 1e-4: float32 sums in
another order, compounded over the steps).

Usage: classifier_training.py [--strata BUILD/strata] [--steps N]"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import tomllib

import h5py
import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "perf"))
import torch_classifiers  # noqa: E402
import torch_gpt  # noqa: E402

TOL = 1e-4


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def make_dataset(strata, tmp, kind, per_step=False):
    """Synthetic samples whose class depends on the input, so the loss moves."""
    rng = np.random.default_rng(3)
    n = 96
    y = rng.integers(0, 4, size=n)
    if kind == "images":
        x = rng.normal(size=(n, 2, 9, 7)).astype(np.float32) * 2 + 1
        x[:, 0, :3, :3] += 2.0 * y[:, None, None]
    else:
        x = rng.normal(size=(n, 6, 3)).astype(np.float32)
        if per_step:  # each step's class shows in that step's first feature
            y = rng.integers(0, 4, size=(n, 6))
            x[:, :, 0] += 2.0 * y
        else:  # the sequence's class shows at every step
            x[:, :, 0] += 2.0 * y[:, None]
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "y.npy"), y.astype(np.int64))
    out = os.path.join(tmp, "data")
    run([strata, "preprocess", kind, "--x", os.path.join(tmp, "x.npy"), "--y", os.path.join(tmp, "y.npy"), "-o", out,
         "--shards", "2", "--val-fraction", "0.25", "--num-classes", "4", "--quiet"])
    return out


def read_split(path, split):
    with open(os.path.join(path, "manifest.json")) as f:
        manifest = json.load(f)
    xs, ys = [], []
    for shard in manifest["splits"][split]:
        with h5py.File(os.path.join(path, shard["file"]), "r") as f:
            xs.append(f["x"][()].astype(np.float64))
            ys.append(f["y"][()])
    x, y = np.concatenate(xs), np.concatenate(ys)
    norm = manifest.get("normalization")
    if norm:  # as Strata: per channel (images) or per feature (sequences), in float64, then rounded
        mean, std = np.array(norm["mean"]), np.array(norm["std"])
        std = np.where(std > 0, std, 1.0)
        if manifest["kind"] == "images":
            x = (x - mean[None, :, None, None]) / std[None, :, None, None]
        else:
            x = (x - mean) / std
    return x.astype(np.float32), y


def learning_rate(t, step, steps):
    """Strata's schedule (optim/lr_schedule.cpp; checked against torch.optim.lr_scheduler elsewhere)."""
    if t["warmup_steps"] > 0 and step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    decay = max(1, steps - t["warmup_steps"] - 1)
    p = min(max((step - t["warmup_steps"]) / decay, 0.0), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * p)) if t["lr_schedule"] == "cosine" else 1 - p
    return t["min_lr"] + (t["lr"] - t["min_lr"]) * shape


def check(strata, tmp, name, model_sets, kind, per_step=False, steps=16):
    data = make_dataset(strata, tmp, kind, per_step)
    common = ["--set", f"data.path={data}", "--set", "data.shuffle=false", "--set", "train.batch_size=8",
              "--set", f"train.steps={steps}", "--set", "train.lr=2e-2", "--set", "train.min_lr=2e-3",
              "--set", "train.warmup_steps=3", "--set", "train.lr_schedule=cosine", "--set", "train.weight_decay=0.1",
              "--set", "train.grad_clip=0.5", "--set", "train.eval_batches=1", "--set", "data.prefetch=0"]
    for s in model_sets:
        common += ["--set", s]
    init_dir, run_dir = os.path.join(tmp, "init"), os.path.join(tmp, "run")
    run([strata, "train", "--config", "/dev/null", *common, "--set", "train.steps=0", "--set", f"train.out_dir={init_dir}",
         "--set", "train.save_weights=w.h5"])
    run([strata, "train", "--config", "/dev/null", *common, "--set", f"train.out_dir={run_dir}"])
    with open(os.path.join(run_dir, "config.toml"), "rb") as f:
        cfg = tomllib.load(f)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        strata_losses = [j["loss"] for j in map(json.loads, f) if "loss" in j]
    model = torch_classifiers.build(cfg["model"])
    with h5py.File(os.path.join(init_dir, "w.h5"), "r") as f, torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(f[n][()]))
    x, y = read_split(data, "train")
    t = cfg["train"]
    opt = torch_gpt.make_adamw(model, t["lr"], (t["beta1"], t["beta2"]), t["eps"], t["weight_decay"])
    B, ok = t["batch_size"], True
    for step in range(steps):
        idx = np.arange(step * B, (step + 1) * B) % len(x)  # no shuffle: position g is sample g mod n
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, step, steps)
        loss = torch_gpt.train_step(model, opt, torch.from_numpy(x[idx]), torch.from_numpy(y[idx].astype(np.int64)),
                                    t["grad_clip"]).item()
        err = abs(loss - strata_losses[step]) / abs(loss)
        ok &= err <= TOL
        print(f"{'PASS' if err <= TOL else 'FAIL'} {name} step {step + 1}: strata {strata_losses[step]:.6f} torch "
              f"{loss:.6f} rel err {err:.2e}")
    if strata_losses[-1] > 0.95 * strata_losses[0]:
        print(f"FAIL {name}: the loss did not move ({strata_losses[0]:.4f} -> {strata_losses[-1]:.4f})")
        ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", default=os.environ.get("STRATA_BIN", os.path.join(REPO, "build", "default", "strata")))
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = [
        ("cnn", ["model.kind=cnn", "model.channels=[6,8]", "model.norm_groups=2", "model.hidden=12"], "images", False),
        ("lstm", ["model.kind=lstm", "model.n_layer=2", "model.hidden_size=10", "model.hidden=8"], "sequences",
         False),
        ("gru_per_step", ["model.kind=lstm", "model.cell=gru", "model.n_layer=2", "model.hidden_size=10",
                          "model.activation=gelu"], "sequences", True),
    ]
    ok = True
    for name, sets, kind, per_step in cases:
        with tempfile.TemporaryDirectory() as tmp:
            ok &= check(args.strata, tmp, name, sets, kind, per_step, args.steps)
    print("all passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
