#!/usr/bin/python3
"""Training throughput of the classifiers: Strata vs PyTorch on the same CNN / LSTM, batch and threads.

A benchmark, not a test. For each config it trains both sides (alternately, --repeats times) on the same random
data shapes, takes the median ms/step after --warmup steps, and prints ms/step, samples/s, achieved GFLOP/s, the
strata/torch samples/s ratio and each side's fraction of a GEMM peak (torch.matmul 2048^2 fp32, same threads)
measured in the same run. The PyTorch side is the twin of perf/torch_classifiers.py (the reference tests hold it
equal to Strata's model), trained with the same AdamW and clipping.

FLOPs per sample = 3 x forward (backward = input + weight gradients), forward = 2 x the multiply-adds of every
convolution / recurrent GEMM (input and hidden projections, all gates, every step) and linear layer; the
elementwise kernels (norms, activations, pooling, cells) are not counted.

  /usr/bin/python3 perf/bench_classifiers.py --config all --repeats 3 --markdown
  /usr/bin/python3 perf/bench_classifiers.py --config cnn-cifar --threads 2
"""
import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_train import PYTHON, machine, run_worker as run_gemm_worker, thread_env  # noqa: E402

CNN = dict(kind="cnn", kernel_size=3, conv_stride=1, padding=-1, pool="max", pool_size=2, norm="group",
           norm_groups=8, activation="relu")
LSTM = dict(kind="lstm", cell="lstm", labels="sequence", activation="relu", hidden=0)
CONFIGS = {
    # the digits model of jobs/configs/digits_cnn.toml
    "cnn-digits": dict(model=dict(CNN, channels=[32, 64], hidden=128, input_shape=[1, 8, 8], num_classes=10),
                       batch_size=64, steps=30),
    # a CIFAR-sized CNN
    "cnn-cifar": dict(model=dict(CNN, channels=[32, 64, 128], hidden=256, input_shape=[3, 32, 32], num_classes=10),
                      batch_size=32, steps=12),
    # the digit-rows model of jobs/configs/digit_rows_lstm.toml
    "lstm-rows": dict(model=dict(LSTM, n_layer=2, hidden_size=64, input_shape=[8, 8], num_classes=10),
                      batch_size=64, steps=40),
    # longer sequences, wider state
    "lstm-long": dict(model=dict(LSTM, n_layer=2, hidden_size=256, input_shape=[64, 32], num_classes=10),
                      batch_size=32, steps=12),
}
LR = 1e-3


def flops_per_sample(m):
    if m["kind"] == "cnn":
        c, h, w = m["input_shape"]
        k = m["kernel_size"]
        pad = m["padding"] if m["padding"] >= 0 else k // 2
        fwd = 0.0
        for out in m["channels"]:
            h = (h + 2 * pad - k) // m["conv_stride"] + 1
            w = (w + 2 * pad - k) // m["conv_stride"] + 1
            fwd += 2.0 * out * h * w * c * k * k
            if m["pool"] != "none":
                h, w = (h - m["pool_size"]) // m["pool_size"] + 1, (w - m["pool_size"]) // m["pool_size"] + 1
            c = out
        flat = c * h * w
    else:
        T, F = m["input_shape"]
        H, gates = m["hidden_size"], 3 if m["cell"] == "gru" else 4
        fwd = sum(2.0 * T * gates * H * ((F if l == 0 else H) + H) for l in range(m["n_layer"]))
        flat = H
    fwd += 2.0 * flat * m["hidden"] + 2.0 * m["hidden"] * m["num_classes"] if m["hidden"] else 2.0 * flat * m["num_classes"]
    return 3.0 * fwd


# ---------------------------------------------------------------- workers (fresh interpreters: threads set first)

def worker_torch(c, threads, steps, warmup):
    import torch
    import torch_classifiers
    import torch_gpt
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_classifiers.build(c["model"])
    opt = torch_gpt.make_adamw(model, LR)
    B = c["batch_size"]
    x = torch.randn(B, *c["model"]["input_shape"])
    y = torch.randint(0, c["model"]["num_classes"], (B,))
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        torch_gpt.train_step(model, opt, x, y, 1.0)
        ms.append((time.perf_counter() - t0) * 1e3)
    return dict(ms=statistics.median(ms[warmup:]))


def run_torch(name, threads, steps, warmup):
    cmd = [PYTHON, os.path.abspath(__file__), "--_worker", "--config", name, "--threads", str(threads),
           "--steps", str(steps), "--warmup", str(warmup)]
    p = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: torch worker failed (rc {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- strata

def write_dataset(strata, tmp, c):
    import numpy as np
    m = c["model"]
    n = 4 * c["batch_size"]
    rng = np.random.default_rng(1)
    np.save(os.path.join(tmp, "x.npy"), rng.normal(size=(n, *m["input_shape"])).astype(np.float32))
    np.save(os.path.join(tmp, "y.npy"), rng.integers(0, m["num_classes"], size=n).astype(np.int64))
    kind = "images" if m["kind"] == "cnn" else "sequences"
    out = os.path.join(tmp, "data")
    p = subprocess.run([strata, "preprocess", kind, "--x", os.path.join(tmp, "x.npy"), "--y",
                        os.path.join(tmp, "y.npy"), "-o", out, "--val-fraction", "0.2", "--quiet",
                        "--num-classes", str(m["num_classes"])], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: strata preprocess failed:\n{p.stderr}")
    return out


def toml_value(v):
    return json.dumps(v)  # ints, strings and lists of ints are the same in JSON and TOML


def run_strata(binary, c, data, tmp, r, steps, threads, warmup):
    out_dir = os.path.join(tmp, f"run{r}")
    toml = os.path.join(tmp, f"run{r}.toml")
    model = "\n".join(f"{k} = {toml_value(v)}" for k, v in c["model"].items())
    with open(toml, "w") as f:
        f.write(f"[model]\n{model}\n\n[data]\npath = {json.dumps(data)}\n\n"
                f"[train]\nbatch_size = {c['batch_size']}\nsteps = {steps}\nlr = {LR}\nwarmup_steps = 0\n"
                f"lr_schedule = \"constant\"\nlog_every = 1000\neval_batches = 1\nout_dir = {json.dumps(out_dir)}\n")
    p = subprocess.run([binary, "train", "--config", toml], env=thread_env(threads), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: strata failed: {binary} train --config {toml}\n{(p.stdout + p.stderr)[-3000:]}")
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        rows = [j for j in map(json.loads, f) if "ms" in j]
    return dict(ms=statistics.median(j["ms"] for j in rows[warmup:]))


# ---------------------------------------------------------------- report

def stats(res, c, peak):
    sps = c["batch_size"] * 1e3 / res["ms"]
    gflops = sps * flops_per_sample(c["model"]) / 1e9
    return dict(ms=res["ms"], sps=sps, gflops=gflops, frac=gflops / peak)


def bench(name, args, peak):
    c = CONFIGS[name]
    steps = args.steps or c["steps"]
    s_runs, t_runs = [], []
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        data = write_dataset(args.strata, tmp, c)
        for r in range(args.repeats):  # alternate sides so drift hits both
            s_runs.append(run_strata(args.strata, c, data, tmp, r, steps, args.threads, args.warmup))
            t_runs.append(run_torch(name, args.threads, steps, args.warmup))
    s = stats(dict(ms=statistics.median(r["ms"] for r in s_runs)), c, peak)
    t = stats(dict(ms=statistics.median(r["ms"] for r in t_runs)), c, peak)
    print(f"== {name}: {c['model']} batch {c['batch_size']}; {steps} steps, warmup {args.warmup}, "
          f"repeats {args.repeats}, threads {args.threads}; {flops_per_sample(c['model']) / 1e6:.2f} MFLOP/sample")
    for side, st in (("strata", s), ("torch", t)):
        print(f"   {side:6s}: {st['ms']:8.2f} ms/step {st['sps']:10.1f} samples/s {st['gflops']:7.2f} GFLOP/s "
              f"({100 * st['frac']:.0f}% of GEMM peak)")
    print(f"   ratio strata/torch samples/s: {s['sps'] / t['sps']:.3f}")
    return name, s, t


def markdown(rows, args, peak):
    cmd = " ".join(shlex.quote(a) for a in [PYTHON, "perf/bench_classifiers.py", *sys.argv[1:]])
    print("\n| date | config | batch | threads | strata ms/step | strata samples/s | strata GFLOP/s | torch ms/step "
          "| torch samples/s | torch GFLOP/s | strata/torch | GEMM peak GFLOP/s | machine | command |")
    print("|" + "---|" * 14)
    for name, s, t in rows:
        print("| " + " | ".join([datetime.date.today().isoformat(), name, str(CONFIGS[name]["batch_size"]),
                                 str(args.threads), f"{s['ms']:.2f}", f"{s['sps']:.0f}",
                                 f"{s['gflops']:.1f} ({100 * s['frac']:.0f}%)", f"{t['ms']:.2f}", f"{t['sps']:.0f}",
                                 f"{t['gflops']:.1f} ({100 * t['frac']:.0f}%)", f"{s['sps'] / t['sps']:.2f}",
                                 f"{peak:.1f}", machine(), f"`{cmd}`"]) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, help="steps per run (default per config)")
    ap.add_argument("--warmup", type=int, default=3, help="steps excluded from the median")
    ap.add_argument("--repeats", type=int, default=1, help="runs per side, alternated")
    ap.add_argument("--strata", default=os.path.join(REPO, "build/default/strata"))
    ap.add_argument("--markdown", action="store_true", help="also print rows for RESULTS.md")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker:
        print(json.dumps(worker_torch(CONFIGS[args.config], args.threads, args.steps, args.warmup)))
        return
    if not os.access(args.strata, os.X_OK):
        sys.exit(f"error: Strata binary '{args.strata}' not found (build it or pass --strata)")
    peak = run_gemm_worker("gemm", args.threads)["gflops"]
    print(f"machine: {machine()}\nGEMM peak (torch.matmul 2048^2 fp32, {args.threads} threads): {peak:.1f} GFLOP/s")
    names = list(CONFIGS) if args.config == "all" else [args.config]
    rows = [bench(n, args, peak) for n in names]
    if args.markdown:
        markdown(rows, args, peak)


if __name__ == "__main__":
    main()
