#!/usr/bin/python3
"""Training throughput: Strata vs PyTorch on the same GPT, batch and threads.

A benchmark, not a test. For each config it trains both sides (alternately,
--repeats times), takes the median ms/step after --warmup steps, and prints
ms/step, tokens/s, achieved GFLOP/s, the strata/torch tokens/s ratio, and each
side's fraction of a GEMM peak (torch.matmul 2048x2048 fp32, median of 5, same
thread count) measured in the same run.

FLOPs per token = 6*N_nonembedding + 6*d_model*vocab + 12*n_layer*d_model*seq_len
  (N_nonembedding: all parameters except wte and wpe; the second term is the
  tied output head, the third the attention scores/weighted sums, no causal
  discount).

  /usr/bin/python3 perf/bench_train.py --config small --threads 2
  /usr/bin/python3 perf/bench_train.py --config all --repeats 3 --markdown
  /usr/bin/python3 perf/bench_train.py --config small --torch-only
  /usr/bin/python3 perf/bench_train.py --config small --precision bf16

--precision bf16: Strata trains with train.precision = "bf16", PyTorch under
torch.autocast(bfloat16), and the GEMM peak is torch.matmul's in bf16.

Both sides run in subprocesses with OPENBLAS_NUM_THREADS = OMP_NUM_THREADS =
threads and OMP_WAIT_POLICY=PASSIVE (OPENBLAS_CORETYPE is left as it is).
Strata gets a synthetic strata-tokens HDF5 dataset and a temp TOML config and
must write <out_dir>/metrics.jsonl (one JSON object per step with "ms").
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
# Debian's python has torch/h5py; a python earlier on PATH may not.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

CONFIGS = {
    "small": dict(n_layer=6, n_head=6, d_model=384, vocab_size=8192, seq_len=256,
                  batch_size=8, steps=12),
    "gpt2-124M": dict(n_layer=12, n_head=12, d_model=768, vocab_size=50304, seq_len=256,
                      batch_size=4, steps=6),
}
LR = 3e-4
GEMM_N = 2048


def flops_per_token(c):
    L, C, V, T = c["n_layer"], c["d_model"], c["vocab_size"], c["seq_len"]
    n_nonemb = L * (12 * C * C + 13 * C) + 2 * C  # blocks + ln_f
    return 6 * n_nonemb + 6 * C * V + 12 * L * C * T


def thread_env(threads):
    env = os.environ.copy()
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY="PASSIVE")
    return env


# ---------------------------------------------------------------- workers
# Run as `bench_train.py --_worker torch|gemm ...` in a fresh interpreter so
# the thread variables are set before torch is imported.

class NativeDropout:
    """PyTorch's own dropout (F.dropout, its Bernoulli generator) at the twin's sites: what a PyTorch user runs."""

    def __init__(self, p):
        self.p = p

    def drop(self, site, x):
        import torch.nn.functional as F
        return F.dropout(x, self.p, training=True)


def worker_torch(c, threads, steps, warmup, precision, dropout=0.0):
    import contextlib
    import torch
    sys.path.insert(0, HERE)
    import torch_gpt
    torch.set_num_threads(threads)
    torch_gpt.DROPOUT = NativeDropout(dropout) if dropout > 0 else None
    torch.manual_seed(0)
    model = torch_gpt.GPT(c["n_layer"], c["n_head"], c["d_model"], c["vocab_size"],
                          c["seq_len"])
    opt = torch_gpt.make_adamw(model, LR)
    B, T, V = c["batch_size"], c["seq_len"], c["vocab_size"]
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))
    ms, losses = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        with (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
              else contextlib.nullcontext()):
            loss = torch_gpt.train_step(model, opt, x, y, 1.0)
        ms.append((time.perf_counter() - t0) * 1e3)
        losses.append(loss.float().item())
    return dict(ms=statistics.median(ms[warmup:]), loss0=losses[0], loss_last=losses[-1])


def worker_gemm(threads, precision):
    import torch
    torch.set_num_threads(threads)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(GEMM_N, GEMM_N).to(dtype)
    b = torch.randn(GEMM_N, GEMM_N).to(dtype)
    torch.matmul(a, b)  # warm up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return dict(gflops=2 * GEMM_N ** 3 / statistics.median(times) / 1e9)


def run_worker(kind, threads, extra=()):
    cmd = [PYTHON, os.path.abspath(__file__), "--_worker", kind, "--threads", str(threads),
           *extra]
    p = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: torch {kind} worker failed (rc {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- strata

def write_dataset(path, c, steps):
    import h5py
    import numpy as np
    V = c["vocab_size"]
    dtype = np.uint16 if V <= 65536 else np.uint32
    rng = np.random.default_rng(1234)
    n_train = 2 * (steps * c["batch_size"] * c["seq_len"] + 1)  # margin for loaders
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "strata-tokens"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["vocab_size"] = np.int64(V)
        f.attrs["eot_id"] = np.int64(V - 1)
        f.attrs["tokenizer"] = "synthetic"
        f["train/tokens"] = rng.integers(0, V, n_train).astype(dtype)
        f["val/tokens"] = rng.integers(0, V, 100_000).astype(dtype)


def write_toml(path, c, steps, data_path, out_dir, precision):
    q = json.dumps  # a JSON string is a valid TOML basic string
    model = "\n".join(f"{k} = {c[k]}" for k in
                      ("n_layer", "n_head", "d_model", "vocab_size", "seq_len"))
    with open(path, "w") as f:
        f.write(f"[model]\n{model}\n\n"
                f"[data]\npath = {q(data_path)}\nshuffle = false\n\n"
                f"[train]\nbatch_size = {c['batch_size']}\nsteps = {steps}\nlr = {LR}\n"
                f"warmup_steps = 0\nlr_schedule = \"constant\"\nlog_every = 1\n"
                f"eval_every = 0\nout_dir = {q(out_dir)}\nprecision = {q(precision)}\n")


def run_strata(binary, toml, out_dir, threads, warmup, sets=()):
    cmd = [binary, "train", "--config", toml]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, env=thread_env(threads),
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: strata failed (rc {p.returncode}): {binary} train --config {toml}\n"
                 f"{(p.stdout + p.stderr)[-3000:]}")
    metrics = os.path.join(out_dir, "metrics.jsonl")
    if not os.path.exists(metrics):
        sys.exit(f"error: strata wrote no {metrics}")
    with open(metrics) as f:
        rows = [r for r in map(json.loads, filter(str.strip, f)) if "ms" in r]
    if len(rows) <= warmup:
        sys.exit(f"error: {metrics} has {len(rows)} step records, need more than {warmup}")
    return dict(ms=statistics.median(r["ms"] for r in rows[warmup:]),
                loss0=rows[0].get("loss"), loss_last=rows[-1].get("loss"))


# ---------------------------------------------------------------- report

def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, nproc {len(os.sched_getaffinity(0))}"


def side_stats(res, c, peak):
    if res is None:
        return None
    tok_s = c["batch_size"] * c["seq_len"] * 1e3 / res["ms"]
    gflops = tok_s * flops_per_token(c) / 1e9
    return dict(ms=res["ms"], tok_s=tok_s, gflops=gflops, frac=gflops / peak)


def bench_config(name, args, peak):
    c = CONFIGS[name]
    steps = args.steps or c["steps"]
    if steps <= args.warmup:
        sys.exit(f"error: --steps {steps} must exceed --warmup {args.warmup}")
    strata_runs, torch_runs = [], []
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        if not args.torch_only:
            data = os.path.join(tmp, "tokens.h5")
            write_dataset(data, c, steps)
        for r in range(args.repeats):  # alternate sides so drift hits both
            if not args.torch_only:
                out_dir = os.path.join(tmp, f"run{r}")
                toml = os.path.join(tmp, f"run{r}.toml")
                write_toml(toml, c, steps, data, out_dir, args.precision)
                strata_runs.append(run_strata(args.strata, toml, out_dir, args.threads, args.warmup,
                                              args.set + ([f"train.dropout={args.dropout}"] if args.dropout else [])))
            torch_runs.append(run_worker("torch", args.threads,
                                         ["--config", name, "--steps", str(steps),
                                          "--warmup", str(args.warmup),
                                          "--precision", args.precision, "--dropout", str(args.dropout)]))

    def median_run(runs):
        return dict(runs[0], ms=statistics.median(r["ms"] for r in runs)) if runs else None

    s = side_stats(median_run(strata_runs), c, peak)
    t = side_stats(median_run(torch_runs), c, peak)
    print(f"== {name}: n_layer {c['n_layer']} n_head {c['n_head']} d_model {c['d_model']} "
          f"vocab {c['vocab_size']} seq {c['seq_len']} batch {c['batch_size']}; "
          f"{steps} steps, warmup {args.warmup}, repeats {args.repeats}, "
          f"threads {args.threads}, precision {args.precision}")
    print(f"   FLOPs/token {flops_per_token(c) / 1e6:.1f} M")
    for side, st, runs in (("strata", s, strata_runs), ("torch", t, torch_runs)):
        if st is None:
            print(f"   {side:6s}: skipped (--torch-only)")
            continue
        print(f"   {side:6s}: {st['ms']:9.1f} ms/step {st['tok_s']:10.1f} tok/s "
              f"{st['gflops']:8.2f} GFLOP/s ({100 * st['frac']:.0f}% of GEMM peak); "
              f"loss {runs[0]['loss0']:.3f} -> {runs[0]['loss_last']:.3f}")
    if s and t:
        print(f"   ratio strata/torch tokens/s: {s['tok_s'] / t['tok_s']:.3f}")
    return name, steps, s, t


def markdown(rows, args, peak):
    cmd = " ".join(shlex.quote(a) for a in [PYTHON, "perf/bench_train.py", *sys.argv[1:]])
    date = datetime.date.today().isoformat()
    print(f"\nprecision {args.precision}")
    print("\n| date | config | threads | strata ms/step | strata tok/s | strata GFLOP/s "
          "| torch ms/step | torch tok/s | torch GFLOP/s | strata/torch | GEMM peak GFLOP/s "
          "| machine | command |")
    print("|" + "---|" * 13)

    def cells(st):
        if st is None:
            return ["n/a"] * 3
        return [f"{st['ms']:.1f}", f"{st['tok_s']:.0f}",
                f"{st['gflops']:.1f} ({100 * st['frac']:.0f}%)"]

    for name, steps, s, t in rows:
        ratio = f"{s['tok_s'] / t['tok_s']:.2f}" if s and t else "n/a"
        print("| " + " | ".join([date, name, str(args.threads), *cells(s), *cells(t), ratio,
                                 f"{peak:.1f}", machine(), f"`{cmd}`"]) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=[*CONFIGS, "all"], default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, help="default: small 12, gpt2-124M 6")
    ap.add_argument("--warmup", type=int, default=2, help="steps excluded from the median")
    ap.add_argument("--strata", default=os.path.join(REPO, "build/default/strata"))
    ap.add_argument("--repeats", type=int, default=1, help="runs per side, alternated")
    ap.add_argument("--markdown", action="store_true", help="also print rows for RESULTS.md")
    ap.add_argument("--torch-only", action="store_true", help="skip the Strata side")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Strata setting (strata train --set), e.g. train.bf16_activations=false")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout at every GPT site on both sides (Strata train.dropout, PyTorch F.dropout)")
    ap.add_argument("--_worker", choices=["torch", "gemm"], help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._worker == "gemm":
        print(json.dumps(worker_gemm(args.threads, args.precision)))
        return
    if args._worker == "torch":
        c = CONFIGS[args.config]
        print(json.dumps(worker_torch(c, args.threads, args.steps, args.warmup, args.precision, args.dropout)))
        return

    if not args.torch_only and not os.access(args.strata, os.X_OK):
        sys.exit(f"error: Strata binary '{args.strata}' not found or not executable.\n"
                 f"Build it (cmake --preset default && cmake --build --preset default), "
                 f"pass --strata PATH, or use --torch-only.")
    peak = run_worker("gemm", args.threads, ["--precision", args.precision])["gflops"]
    print(f"machine: {machine()}")
    print(f"GEMM peak (torch.matmul {GEMM_N}^2 {args.precision}, {args.threads} threads): "
          f"{peak:.1f} GFLOP/s")
    print("FLOPs/token = 6*N_nonembedding + 6*d_model*vocab + 12*n_layer*d_model*seq_len")
    names = list(CONFIGS) if args.config == "all" else [args.config]
    rows = [bench_config(n, args, peak) for n in names]
    if args.markdown:
        markdown(rows, args, peak)


if __name__ == "__main__":
    main()
