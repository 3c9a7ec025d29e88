#!/usr/bin/python3
"""The everyday training techniques on a real dataset: the digits CNN (jobs/configs/digits_cnn.toml on scikit-learn's
8x8 digits, data/digits.sh) trained with each learning-rate schedule, with L1 and L2 penalties, label smoothing and
early stopping, over several seeds. Prints a markdown table of the mean final validation accuracy and loss (early
stopping: the best checkpoint's metric and step) for docs/training.md and the README.

Usage: perf/techniques_digits.py [--strata build/default/strata] [--data build/digits] [--seeds 1 2 3]
"""
import json
from pathlib import Path

from digits_runs import mean, options, train

# (label, --set overrides): 600 steps each, the config's cosine schedule as the baseline.
RUNS = [
    ("cosine (the config)", []),
    ("constant", ["train.lr_schedule=constant"]),
    ("linear", ["train.lr_schedule=linear"]),
    ("step (x0.3 every 200)", ["train.lr_schedule=step", "train.lr_step_size=200", "train.lr_gamma=0.3"]),
    ("multistep (x0.1 at 300, 500)", ["train.lr_schedule=multistep", "train.lr_milestones=300,500",
                                      "train.lr_gamma=0.1"]),
    ("exponential (x0.995 per step)", ["train.lr_schedule=exponential", "train.lr_gamma=0.995"]),
    ("cosine_restarts (150, x2)", ["train.lr_schedule=cosine_restarts", "train.lr_restart_period=150",
                                   "train.lr_restart_mult=2"]),
    ("wsd (last 20% decays)", ["train.lr_schedule=wsd", "train.lr_decay_fraction=0.2"]),
    ("L2 1e-3 (loss term)", ["train.l2=1e-3"]),
    ("L1 1e-5 (loss term)", ["train.l1=1e-5"]),
    ("label smoothing 0.1", ["train.label_smoothing=0.1"]),
]


def main():
    o = options(__doc__.splitlines()[0], "/tmp/strata-techniques-digits")
    print("| run | val accuracy (mean) | min | max | val loss (mean) |")
    print("|---|---|---|---|---|")
    for n, (label, sets) in enumerate(RUNS):
        acc, loss = [], []
        for seed in o.seeds:
            a, l = train(o, Path(o.dir) / f"{n}-{seed}", *sets, f"train.seed={seed}")
            acc.append(a)
            loss.append(l)
        print(f"| {label} | {mean(acc):.4f} | {min(acc):.4f} | {max(acc):.4f} | {mean(loss):.4f} |", flush=True)
    # Early stopping on the validation loss over a long run: where it stopped, and the best checkpoint's loss.
    stops, bests, steps = [], [], []
    for seed in o.seeds:
        out = Path(o.dir) / f"es-{seed}"
        train(o, out, "train.steps=3000", "train.eval_every=50", "train.early_stop_metric=val_loss",
              "train.early_stop_patience=4", f"train.seed={seed}")
        best = json.loads((out / "best.json").read_text())
        bests.append(best["value"])
        steps.append(best["step"])
        stops.append(max(json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()))
    print(f"\nearly stopping (val_loss, patience 4 x 50 steps, train.steps 3000): stopped after {stops} steps; best "
          f"val loss {mean(bests):.4f} (mean) at steps {steps}")


if __name__ == "__main__":
    main()
