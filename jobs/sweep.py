#!/usr/bin/env python3
"""Hyperparameter sweeps for jobs/sweep.sbatch (standard library only).

  sweep.py trial SPEC INDEX [--seed S]   prints the `--set key=value` arguments of trial INDEX, one per line
  sweep.py count SPEC                    prints the number of trials of a grid (for --array=0-(N-1))
  sweep.py record DIR INDEX RUN_DIR RC SETS...   writes DIR/trial-INDEX.json from the run's metrics.jsonl
  sweep.py summary DIR                   collects DIR/trial-*.json into DIR/summary.csv, prints the table best first

SPEC: space-separated `key=values`. A grid: `train.lr=1e-3,3e-3 model.d_model=32,64` (the trials are the cartesian
product, in order). Random search: `train.lr=loguniform:1e-4:1e-2 train.warmup_steps=int:0:20` (each trial draws
from a generator seeded with (seed, index), so a trial is reproducible and independent of the others);
`uniform:a:b`, `loguniform:a:b`, `int:a:b` (inclusive), `choice:a,b,c`. Grid and random keys may be mixed: the
grid is enumerated and each grid point gets random draws.
The score is the final validation loss (lower is better); a trial that failed ranks last.
"""
import csv
import itertools
import json
import math
import os
import random
import sys


def parse(spec):
    grid, rand = [], []
    for item in spec.split():
        key, _, values = item.partition("=")
        if not key or not values:
            sys.exit(f"sweep.py: '{item}' in the spec is not key=values")
        kind, _, rest = values.partition(":")
        if kind in ("uniform", "loguniform", "int", "choice") and rest:
            rand.append((key, kind, rest))
        else:
            grid.append((key, values.split(",")))
    return grid, rand


def grid_points(grid):
    return list(itertools.product(*[[(k, v) for v in vs] for k, vs in grid])) or [()]


def draw(kind, rest, rng):
    if kind == "choice":
        return rng.choice(rest.split(","))
    lo, hi = (float(x) for x in rest.split(":"))
    if kind == "uniform":
        return f"{rng.uniform(lo, hi):.6g}"
    if kind == "loguniform":
        return f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.6g}"
    return str(rng.randint(int(lo), int(hi)))


def trial(spec, index, seed):
    grid, rand = parse(spec)
    points = grid_points(grid)
    if not rand and index >= len(points):
        sys.exit(f"sweep.py: trial {index} but the grid has {len(points)} points")
    rng = random.Random(seed * 1000003 + index)
    sets = list(points[index % len(points)]) + [(k, draw(kind, rest, rng)) for k, kind, rest in rand]
    return [f"{k}={v}" for k, v in sets]


def record(out_dir, index, run_dir, rc, sets):
    steps, evals = [], []
    path = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(path):
        for line in open(path):
            j = json.loads(line)
            (evals if "val_loss" in j else steps).append(j)
    result = {"trial": int(index), "sets": sets, "exit_code": int(rc), "run_dir": run_dir,
              "steps": steps[-1]["step"] if steps else 0, "train_loss": steps[-1]["loss"] if steps else None,
              "val_loss": evals[-1]["val_loss"] if evals and int(rc) == 0 else None}
    tmp = os.path.join(out_dir, f".trial-{index}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, f"trial-{index}.json"))


def summary(out_dir):
    rows = [json.load(open(os.path.join(out_dir, n))) for n in sorted(os.listdir(out_dir))
            if n.startswith("trial-") and n.endswith(".json")]
    rows.sort(key=lambda r: (r["val_loss"] is None, r["val_loss"] if r["val_loss"] is not None else 0, r["trial"]))
    keys = sorted({s.split("=", 1)[0] for r in rows for s in r["sets"]})
    tmp = os.path.join(out_dir, ".summary.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "trial", *keys, "val_loss", "train_loss", "steps", "exit_code"])
        for i, r in enumerate(rows):
            vals = dict(s.split("=", 1) for s in r["sets"])
            w.writerow([i + 1, r["trial"], *[vals.get(k, "") for k in keys], r["val_loss"], r["train_loss"],
                        r["steps"], r["exit_code"]])
    os.replace(tmp, os.path.join(out_dir, "summary.csv"))
    print(f"sweep {out_dir}: {len(rows)} trial(s), best first (val loss; failed trials last)")
    for i, r in enumerate(rows):
        loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else f"failed (exit {r['exit_code']})"
        print(f"  {i + 1:>2}. trial {r['trial']:>3}  {loss:<18} {' '.join(r['sets'])}")
    if rows and rows[0]["val_loss"] is not None:
        print(f"best: trial {rows[0]['trial']} ({' '.join(rows[0]['sets'])}) val loss {rows[0]['val_loss']:.4f}")


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "trial":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
        print("\n".join(trial(argv[2], int(argv[3]), seed)))
    elif cmd == "count":
        grid, rand = parse(argv[2])
        print(len(grid_points(grid)))
    elif cmd == "record":
        record(argv[2], argv[3], argv[4], argv[5], argv[6:])
    elif cmd == "summary":
        summary(argv[2])
    else:
        sys.exit(f"sweep.py: unknown command '{cmd}'\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
