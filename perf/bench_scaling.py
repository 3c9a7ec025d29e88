#!/usr/bin/python3
"""Scaling on this machine: tokens/s and per-rank efficiency at 1 and 2 ranks in data, tensor and pipeline
parallelism (one rank per core, one BLAS thread per rank), and the time each step spends blocked on
communication (measured by the trainer, `comm_ms` in metrics.jsonl: waiting for data-parallel gradient
buckets, in tensor-parallel all-reduces, and in pipeline receives -- the last includes the pipeline bubble)
against the rest of the step.

A benchmark, not a test. Same model and global batch at every size (strong scaling). Medians over the timed
steps (after --warmup) and over --repeats alternating runs.

  /usr/bin/python3 perf/bench_scaling.py --config small --repeats 3 --plot perf/scaling.png --markdown
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_train  # noqa: E402  (shared dataset/config writers and the FLOP count)

MPIEXEC = shutil.which("mpiexec") or "mpiexec"

LAYOUTS = [  # (label, ranks, --set overrides)
    ("1 rank", 1, []),
    ("dp 2", 2, ["parallel.dp=2"]),
    ("dp 2 + ZeRO-1", 2, ["parallel.dp=2", "parallel.zero1=true"]),
    ("tp 2", 2, ["parallel.tp=2"]),
    ("pp 2 (1F1B, 4 mb)", 2, ["parallel.pp=2", "train.micro_batch_size=2"]),
]


def run(binary, toml, out_dir, ranks, sets, warmup):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [MPIEXEC, "--allow-run-as-root", "-np", str(ranks), "--bind-to", "core", binary, "train", "--config", toml,
           "--set", f"train.out_dir={out_dir}"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        rows = [r for r in map(json.loads, filter(str.strip, f)) if "ms" in r][warmup:]
    return dict(ms=statistics.median(r["ms"] for r in rows), comm=statistics.median(r["comm_ms"] for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="small", choices=sorted(bench_train.CONFIGS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strata", default=os.path.join(bench_train.REPO, "build", "default", "strata"))
    ap.add_argument("--plot", help="write a PNG of tokens/s and step-time breakdown")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    c = dict(bench_train.CONFIGS[args.config])
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.h5")
        bench_train.write_dataset(data, c, args.steps)
        toml = os.path.join(tmp, "cfg.toml")
        bench_train.write_toml(toml, c, args.steps, data, os.path.join(tmp, "unused"))
        results = {label: [] for label, _, _ in LAYOUTS}
        for r in range(args.repeats):
            for label, ranks, sets in LAYOUTS:
                results[label].append(run(args.strata, toml, os.path.join(tmp, f"run{r}-{ranks}-{len(sets)}"), ranks,
                                          sets, args.warmup))
    tokens = c["batch_size"] * c["seq_len"]
    flops = bench_train.flops_per_token(c)
    rows = []
    base = None
    for label, ranks, _ in LAYOUTS:
        ms = statistics.median(x["ms"] for x in results[label])
        comm = statistics.median(x["comm"] for x in results[label])
        tps = tokens / (ms / 1000)
        base = base or tps
        rows.append(dict(label=label, ranks=ranks, ms=ms, comm=comm, tps=tps, speedup=tps / base,
                         efficiency=tps / base / ranks, gflops=tps * flops / 1e9))
    print(f"machine: {bench_train.machine()}; config {args.config}, global batch {c['batch_size']}, "
          f"{args.steps} steps, warmup {args.warmup}, repeats {args.repeats}, 1 BLAS thread per rank")
    for r in rows:
        print(f"  {r['label']:<14} {r['ms']:8.1f} ms/step  {r['tps']:8.1f} tok/s  {r['gflops']:6.1f} GFLOP/s  "
              f"speedup {r['speedup']:.2f}  efficiency {r['efficiency']:.2f}  blocked on comm {r['comm']:.1f} ms "
              f"({100 * r['comm'] / r['ms']:.1f}% of the step)")
    if args.markdown:
        date = datetime.date.today().isoformat()
        cmd = "/usr/bin/python3 perf/bench_scaling.py " + " ".join(sys.argv[1:])
        print("\n| date | config | layout | ranks | ms/step | tok/s | GFLOP/s | speedup | efficiency/rank | "
              "comm ms (share) | command |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {date} | {args.config} | {r['label']} | {r['ranks']} | {r['ms']:.1f} | {r['tps']:.0f} | "
                  f"{r['gflops']:.1f} | {r['speedup']:.2f} | {r['efficiency']:.2f} | {r['comm']:.1f} "
                  f"({100 * r['comm'] / r['ms']:.1f}%) | `{cmd}` |")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
        labels = [r["label"] for r in rows]
        a.bar(labels, [r["tps"] for r in rows], color="tab:blue")
        a.set_ylabel("tokens/s")
        a.set_title(f"{args.config}: throughput (global batch {c['batch_size']})")
        for i, r in enumerate(rows):
            a.text(i, r["tps"], f"{r['speedup']:.2f}x", ha="center", va="bottom")
        b.bar(labels, [r["ms"] - r["comm"] for r in rows], label="compute (and the rest)", color="tab:green")
        b.bar(labels, [r["comm"] for r in rows], bottom=[r["ms"] - r["comm"] for r in rows],
              label="blocked on communication", color="tab:red")
        b.set_ylabel("ms per step")
        b.set_title("step time")
        b.legend()
        for ax in (a, b):
            ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
