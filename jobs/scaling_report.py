#!/usr/bin/env python3
"""Turns the runs of jobs/scaling.sbatch into a CSV and a markdown table (standard library only).

  scaling_report.py RUNS_CSV OUT_CSV

RUNS_CSV rows: ranks, nodes, mode (strong|weak), global_batch, run_dir (holding metrics.jsonl). Time per step is
the median of the steps after the first 3; throughput is tokens/s (GPT) or samples/s (CNN, LSTM). Efficiency: strong = t1 / (n * tn); weak = t1 / tn (t1: the 1-rank run).
"""
import csv
import json
import os
import statistics
import sys


def median_ms(run_dir):
    """Median ms/step and throughput (tokens/s for a language model, samples/s for a classifier) and its unit."""
    rows = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    ms = [r["ms"] for r in rows if "ms" in r][3:]
    if not ms:
        sys.exit(f"scaling_report.py: {run_dir}: fewer than 4 steps")
    key = "tokens_per_s" if any("tokens_per_s" in r for r in rows) else "samples_per_s"
    rate = [r[key] for r in rows if key in r][3:]
    return statistics.median(ms), statistics.median(rate), key


def main(runs_csv, out_csv):
    runs = list(csv.DictReader(open(runs_csv)))
    base = next(r for r in runs if r["mode"] == "strong" and int(r["ranks"]) == 1)
    t1, _, key = median_ms(base["run_dir"])
    out = []
    for r in runs:
        n = int(r["ranks"])
        ms, rate, _ = median_ms(r["run_dir"])
        eff = t1 / (n * ms) if r["mode"] == "strong" else t1 / ms
        out.append({"ranks": n, "nodes": int(r["nodes"]), "mode": r["mode"], "global_batch": int(r["global_batch"]),
                    "ms_per_step": round(ms, 3), key: round(rate, 1), "efficiency": round(eff, 3)})
    with open(out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    print(f"scaling results: {out_csv}")
    unit = "tokens/s" if key == "tokens_per_s" else "samples/s"
    print(f"| mode | ranks | nodes | global batch | ms/step | {unit} | efficiency |")
    print("|---|---|---|---|---|---|---|")
    for o in sorted(out, key=lambda o: (o["mode"], o["ranks"])):
        print(f"| {o['mode']} | {o['ranks']} | {o['nodes']} | {o['global_batch']} | {o['ms_per_step']} | "
              f"{o[key]} | {o['efficiency']:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
