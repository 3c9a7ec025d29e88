#!/usr/bin/python3
"""Plots of one or more training runs: reads each run directory's metrics.jsonl (the one line per step and per
evaluation the trainer writes) and draws, one curve per run,

  loss.png        training loss (and validation loss, markers) against steps
  loss_time.png   the same against wall time (the sum of the steps' times: pauses between restarts left out)
  lr.png          learning rate against steps
  throughput.png  tokens/s or samples/s against steps

Usage: python3 jobs/plot_runs.py RUN_DIR [RUN_DIR ...] [-o OUT_DIR] [--smooth N]
(the scaling plots come from perf/bench_scaling.py --plot).
"""
import argparse
import json
import os
import sys


def series(run_dir):
    """The run's curves: steps, loss, lr, throughput, the seconds elapsed at each step, and (step, val_loss) pairs.
    Steps repeated by a restart keep their last line (the trainer itself drops them)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        sys.exit(f"plot_runs.py: {path} does not exist (not a run directory?)")
    steps, evals = {}, {}
    for line in open(path):
        j = json.loads(line)
        (evals if "val_loss" in j else steps)[j["step"]] = j
    # A step the guard skipped for a non-finite loss has none (null): left out of the curves.
    order = sorted(s for s in steps if steps[s].get("loss") is not None)
    elapsed, total = [], 0.0
    for s in order:
        total += steps[s].get("ms", 0.0) / 1000.0
        elapsed.append(total)
    unit = "tokens_per_s" if order and "tokens_per_s" in steps[order[0]] else "samples_per_s"
    return {
        "step": order,
        "loss": [steps[s]["loss"] for s in order],
        "lr": [steps[s]["lr"] for s in order],
        "throughput": [steps[s].get(unit, 0.0) for s in order],
        "throughput_unit": unit.replace("_per_s", "/s"),
        "seconds": elapsed,
        "val": [(s, evals[s]["val_loss"]) for s in sorted(evals)],
    }


def smooth(values, n):
    """Trailing mean over n points (n <= 1: as is)."""
    if n <= 1:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def plot(runs, out_dir, smoothing=1):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(out_dir, exist_ok=True)
    data = {name: series(d) for name, d in runs}
    written = []

    def figure(filename, ylabel, xlabel, draw, log_y=False):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, s in data.items():
            draw(ax, name, s)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, filename)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    def loss_curves(x_key):
        def draw(ax, name, s):
            line, = ax.plot(s[x_key], smooth(s["loss"], smoothing), label=f"{name} train", lw=1.2)
            if s["val"]:
                at = {step: i for i, step in enumerate(s["step"])}
                xs = [s[x_key][at[step]] if x_key != "step" else step for step, _ in s["val"] if step in at]
                ys = [v for step, v in s["val"] if step in at]
                ax.plot(xs, ys, "o--", color=line.get_color(), label=f"{name} val", ms=4)
        return draw

    figure("loss.png", "loss", "step", loss_curves("step"), log_y=True)
    figure("loss_time.png", "loss", "seconds (training time)", loss_curves("seconds"), log_y=True)
    figure("lr.png", "learning rate", "step", lambda ax, name, s: ax.plot(s["step"], s["lr"], label=name))
    units = {s["throughput_unit"] for s in data.values()}
    figure("throughput.png", " or ".join(sorted(units)), "step",
           lambda ax, name, s: ax.plot(s["step"], smooth(s["throughput"], smoothing), label=name))
    return written


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories (train.out_dir)")
    p.add_argument("-o", "--out", default="plots", help="directory for the PNGs (default: plots)")
    p.add_argument("--smooth", type=int, default=1, help="trailing mean over this many steps")
    a = p.parse_args()
    runs = [(os.path.basename(os.path.normpath(d)) or d, d) for d in a.runs]
    for path in plot(runs, a.out, a.smooth):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
