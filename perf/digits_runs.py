"""Shared by perf/prune_digits.py and perf/techniques_digits.py: `strata train` / `strata eval` runs of the digits
CNN (jobs/configs/digits_cnn.toml) with --set overrides, their final validation figures, and the common options."""
import argparse
import json
import re
import subprocess
from pathlib import Path

CONFIG = "jobs/configs/digits_cnn.toml"


def run(args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, args))}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def sets_of(values):
    return sum((["--set", s] for s in values), [])


def train(o, out, *sets):
    """Trains into OUT; returns (final val accuracy, final val loss)."""
    stdout = run([o.strata, "train", "--config", CONFIG, *sets_of([f"train.out_dir={out}", f"data.path={o.data}",
                                                                    *sets])])
    m = re.search(r"val loss ([\d.]+), val accuracy ([\d.]+)", stdout)
    return float(m.group(2)), float(m.group(1))


def evaluate(o, weights, name, *sets):
    """`strata eval` of WEIGHTS; returns (val accuracy, val loss)."""
    report = Path(o.dir) / f"{name}.json"
    run([o.strata, "eval", "--config", CONFIG, "--weights", weights, "--metrics-json", report,
         *sets_of([f"data.path={o.data}", *sets])])
    m = json.loads(report.read_text())
    return m["accuracy"], m["loss"]


def mean(values):
    return sum(values) / len(values)


def options(description, default_dir):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--strata", default="build/default/strata")
    p.add_argument("--data", default="build/digits")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--dir", default=default_dir)
    o = p.parse_args()
    Path(o.dir).mkdir(parents=True, exist_ok=True)
    return o
