#!/usr/bin/python3
"""Accuracy against sparsity on a real dataset: the digits CNN (jobs/configs/digits_cnn.toml, scikit-learn's 8x8
digits built by data/digits.sh) trained with gradual magnitude pruning ([prune], global and per-layer scope) at
several sparsities, and structurally pruned (`strata prune --channels F --hidden F`) after training, evaluated
before and after fine-tuning the smaller model (--init-from). Each figure is the mean over seeds of the final
validation accuracy; prints markdown tables for perf/RESULTS.md and the README.

Usage: perf/prune_digits.py [--strata build/default/strata] [--data build/digits] [--seeds 1 2 3] [--dir /tmp/prune]
"""
import re
from pathlib import Path

from digits_runs import evaluate, mean, options, run, train


def main():
    o = options(__doc__.splitlines()[0], "/tmp/strata-prune-digits")
    # Pruned from step 100 to step 450 of 600, masks updated every 25 steps (the cosine schedule's last 150 steps
    # recover at the final sparsity).
    schedule = ["prune.start_step=100", "prune.end_step=450", "prune.every=25"]
    rows = []
    for scope, sparsities in [("global", [0.0, 0.5, 0.8, 0.9, 0.95, 0.98]), ("layer", [0.9, 0.95])]:
        for s in sparsities:
            acc, loss = [], []
            for seed in o.seeds:
                sets = [f"train.seed={seed}"] + ([f"prune.sparsity={s}", f"prune.scope={scope}"] + schedule if s else [])
                a, l = train(o, Path(o.dir) / f"{scope}-{s}-{seed}", *sets)
                acc.append(a)
                loss.append(l)
            rows.append((scope if s else "none", s, mean(acc), min(acc), max(acc), mean(loss)))
    print("| scope | sparsity | val accuracy (mean) | min | max | val loss (mean) |")
    print("|---|---|---|---|---|---|")
    for scope, s, a, lo, hi, l in rows:
        print(f"| {scope} | {s:.2f} | {a:.4f} | {lo:.4f} | {hi:.4f} | {l:.4f} |")

    print("\n| structures removed | parameters | val accuracy after `strata prune` | after fine-tuning 300 steps |")
    print("|---|---|---|---|")
    for f in [0.25, 0.5, 0.75]:
        before, after, params = [], [], ""
        for seed in o.seeds:
            base = Path(o.dir) / f"global-0.0-{seed}" / "weights.h5"
            small = Path(o.dir) / f"small-{f}-{seed}.h5"
            out = run([o.strata, "prune", base, "--out", small, "--channels", f, "--hidden", f])
            fields = re.search(r"fine-tune it with((?: --set \S+)+)", out).group(1).split(" --set ")[1:]
            params = re.search(r"(\d+ -> \d+) parameters", out).group(1)
            before.append(evaluate(o, small, f"small-{f}-{seed}", *fields)[0])
            after.append(train(o, Path(o.dir) / f"tuned-{f}-{seed}", *fields, f"train.seed={seed}",
                               "train.steps=300", "train.warmup_steps=0", "train.lr=1e-3", f"train.init_from={small}")[0])
        print(f"| {f:.0%} of channels and hidden units | {params} | {mean(before):.4f} | {mean(after):.4f} |")


if __name__ == "__main__":
    main()
