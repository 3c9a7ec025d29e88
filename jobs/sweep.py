#!/usr/bin/env python3
"""Hyperparameter sweeps for jobs/sweep.sbatch (standard library only).

  sweep.py trial SPEC INDEX [--seed S]   prints the `--set key=value` arguments of trial INDEX, one per line
  sweep.py count SPEC                    prints the number of trials of a grid (for --array=0-(N-1))
  sweep.py record DIR INDEX RUN_DIR RC SETS...   writes DIR/trial-INDEX.json from the run's metrics.jsonl (or, for
                                                 a cross-validated trial, its cv.json: the folds' mean val loss)
  sweep.py summary DIR                   collects DIR/trial-*.json into DIR/summary.csv, prints the table best first
  sweep.py halving SPEC --config FILE --dir DIR --trials N --min-steps R --max-steps M [--eta E] [--seed S]
                   [--cv K] [--launch "mpiexec -np 2"] [--strata BIN] [--progress | --quiet] [-- --set k=v ...]
      successive halving: N trials (grid points in order, then random draws) train R steps each (a pause:
      train.stop_after, with the schedule of M steps), the best 1/E by validation loss resume from their checkpoints
      to R*E steps, and so on until M; writes DIR/halving.json, DIR/halving.csv and DIR/best-config.toml (the
      winner's resolved config), prints the rungs and the ranking. With --cv K each trial is K runs, one per fold of
      the train split (data.cv_folds = K, data.cv_fold = f, in DIR/trial-I/fold-F), paused and resumed together;
      its score at a rung is the folds' mean validation loss (their std is reported beside it). Progress over the
      planned training steps (elapsed, ETA) goes to stderr when it is a terminal or with --progress
  sweep.py hyperband SPEC --config FILE --dir DIR --min-steps R --max-steps M [--eta E] ... (random keys only)
      Hyperband: brackets of successive halving from M / E^s steps (s = s_max .. 0), fresh trials in each; the best
      bracket winner's config goes to DIR/best-config.toml, the brackets to DIR/hyperband.json

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

PROGRESS = False  # progress lines on stderr (halving, hyperband): --progress, or stderr a terminal unless --quiet


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
    cv = os.path.join(run_dir, "cv.json")
    if os.path.exists(cv):  # a cross-validated trial (STRATA_SWEEP_CV): the folds' mean and std
        report = json.load(open(cv))
        result.update(val_loss=report["mean"]["val_loss"] if int(rc) == 0 else None,
                      val_loss_std=report["std"]["val_loss"], folds=report["folds"],
                      steps=max(f["step"] for f in report["per_fold"]))
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
    cv = any("folds" in r for r in rows)
    print(f"sweep {out_dir}: {len(rows)} trial(s), best first "
          f"({'mean val loss over the cross-validation folds' if cv else 'val loss'}; failed trials last)")
    for i, r in enumerate(rows):
        loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else f"failed (exit {r['exit_code']})"
        if r["val_loss"] is not None and "val_loss_std" in r:
            loss += f" +- {r['val_loss_std']:.4f}"
        print(f"  {i + 1:>2}. trial {r['trial']:>3}  {loss:<18} {' '.join(r['sets'])}")
    if rows and rows[0]["val_loss"] is not None:
        print(f"best: trial {rows[0]['trial']} ({' '.join(rows[0]['sets'])}) val loss {rows[0]['val_loss']:.4f}")


def last_val_loss(run_dir, up_to):
    """The validation loss of the last evaluation at or before step up_to (None if there is none)."""
    best = None
    path = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(path):
        for line in open(path):
            j = json.loads(line)
            if "val_loss" in j and j["step"] <= up_to:
                best = j["val_loss"]
    return best


def duration(seconds):
    """42.0s, 3m07s, 2h05m: as strata's progress lines print durations."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds + 0.5)
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{(s % 3600) // 60:02d}m"


class StepProgress:
    """Progress over the training steps a search plans, on stderr when it is a terminal or --progress asks (quiet in
    batch logs): "halving: 1200 of 5400 steps (22%), 17.0s elapsed, ETA 59.5s"."""

    def __init__(self, label, total, enabled):
        import time
        self.label, self.total, self.done, self.enabled = label, total, 0, enabled
        self.start = time.monotonic()

    def add(self, steps):
        import time
        self.done += steps
        if not self.enabled or self.done <= 0:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * max(0, self.total - self.done)
        print(f"{self.label}: {self.done} of {self.total} steps ({100 * self.done / max(1, self.total):.0f}%), "
              f"{duration(elapsed)} elapsed, ETA {duration(left)}", file=sys.stderr, flush=True)


def halving_rungs(min_steps, max_steps, eta):
    """The steps each rung trains to: min_steps, x eta, ..., then max_steps."""
    rungs, r = [], min_steps
    while r < max_steps:
        rungs.append(r)
        r *= eta
    return rungs + [max_steps]


def halving_steps(trials, min_steps, max_steps, eta, folds):
    """The training steps a successive-halving search plans (when no trial fails)."""
    rungs = halving_rungs(min_steps, max_steps, eta)
    plan = halving_plan(trials, rungs, eta)
    return sum(n * (b - (rungs[k - 1] if k else 0)) for k, (n, b) in enumerate(zip(plan, rungs))) * folds


def halving_plan(trials, rungs, eta):
    """Trials alive at each rung when none fails: all, then the best 1/eta (at least one) rung by rung."""
    alive = [trials]
    for _ in rungs[1:]:
        alive.append(max(1, math.ceil(alive[-1] / eta)))
    return alive


def halving(spec, config, out_dir, trials, min_steps, max_steps, eta, seed, launch, strata, extra, first_trial=0,
            cv=0, progress=None):
    import shlex
    import subprocess
    if trials < 1 or min_steps < 1 or max_steps < min_steps or eta < 2:
        sys.exit("sweep.py halving: expected --trials >= 1, 1 <= --min-steps <= --max-steps, --eta >= 2")
    if cv == 1 or cv < 0:
        sys.exit("sweep.py halving: --cv K needs K >= 2 folds (0: no cross-validation)")
    folds = list(range(cv)) if cv else [None]
    os.makedirs(out_dir, exist_ok=True)
    rungs = halving_rungs(min_steps, max_steps, eta)
    state = {i: {"trial": i, "sets": trial(spec, i, seed), "scores": {}, "exit_code": 0}
             for i in range(first_trial, first_trial + trials)}
    alive = list(state)
    if progress is None:  # this search's own progress (hyperband passes one over its brackets)
        progress = StepProgress("halving", halving_steps(trials, min_steps, max_steps, eta, len(folds)), PROGRESS)
    for k, budget in enumerate(rungs):
        print(f"halving: rung {k}: {len(alive)} trial(s) to step {budget}", flush=True)
        for i in alive:
            t = state[i]
            trial_dir = os.path.join(out_dir, f"trial-{i}")
            fold_scores, failed = [], None
            for fold in folds:  # one run, or one per cross-validation fold
                run_dir = trial_dir if fold is None else os.path.join(trial_dir, f"fold-{fold}")
                cmd = [*shlex.split(launch), strata, "train", "--config", config, "--resume", "auto",
                       "--set", f"train.out_dir={run_dir}", "--set", f"train.steps={max_steps}",
                       "--set", f"train.stop_after={budget if budget < max_steps else 0}", *extra]
                if fold is not None:
                    cmd += ["--set", f"data.cv_folds={cv}", "--set", f"data.cv_fold={fold}"]
                for s in t["sets"]:
                    cmd += ["--set", s]
                log_path = os.path.join(out_dir, f"trial-{i}.log")
                with open(log_path, "a") as log:
                    rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
                paused = rc == 75 and budget < max_steps  # the pause at the rung
                score = last_val_loss(run_dir, budget) if rc == 0 or paused else None
                if score is None:
                    failed = failed or (rc, log_path)
                    t["exit_code"] = rc or 1
                fold_scores.append(score)
            if failed:
                score = None
            else:
                t["exit_code"] = 0
                score = sum(fold_scores) / len(fold_scores)
                if cv:
                    t.setdefault("fold_scores", {})[str(budget)] = fold_scores
                    t.setdefault("std", {})[str(budget)] = math.sqrt(
                        sum((x - score) ** 2 for x in fold_scores) / len(fold_scores))
            t["scores"][str(budget)] = score
            t["reached"] = budget
            progress.add((budget - (rungs[k - 1] if k else 0)) * len(folds))
            what = "mean val loss over %d folds" % cv if cv else "val loss"
            print(f"  trial {i:>3} step {budget:>6}: " + (f"{what} {score:.4f}" + (
                  f" +- {t['std'][str(budget)]:.4f}" if cv else "") if score is not None
                  else f"failed (exit {failed[0]}, {failed[1]})") + f"  {' '.join(t['sets'])}", flush=True)
        if k + 1 == len(rungs):
            break
        ranked = sorted(alive, key=lambda i: (state[i]["scores"][str(budget)] is None,
                                              state[i]["scores"][str(budget)] or 0.0, i))
        alive = [i for i in ranked[:max(1, math.ceil(len(alive) / eta))] if state[i]["scores"][str(budget)] is not None]
        if not alive:
            sys.exit("sweep.py halving: every trial failed at this rung")
    # Ranking: by the deepest rung reached, then its score.
    def key(t):
        score = t["scores"].get(str(t["reached"]))
        return (-t["reached"], score is None, score or 0.0, t["trial"])
    rows = sorted(state.values(), key=key)
    result = {"rungs": rungs, "eta": eta, "cv_folds": cv, "trials": rows}
    tmp = os.path.join(out_dir, ".halving.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "halving.json"))
    keys = sorted({s.split("=", 1)[0] for t in rows for s in t["sets"]})
    tmp = os.path.join(out_dir, ".halving.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rank", "trial", *keys, *[f"val_loss@{r}" for r in rungs]])
        for n, t in enumerate(rows):
            vals = dict(s.split("=", 1) for s in t["sets"])
            w.writerow([n + 1, t["trial"], *[vals.get(k, "") for k in keys],
                        *[t["scores"].get(str(r), "") for r in rungs]])
    os.replace(tmp, os.path.join(out_dir, "halving.csv"))
    best = rows[0]
    best_config = os.path.join(out_dir, f"trial-{best['trial']}", *(["fold-0"] if cv else []), "config.toml")
    if best["scores"].get(str(max_steps)) is not None and os.path.exists(best_config):
        text = open(best_config).read()
        if cv:  # the configuration itself, to train on the whole train split
            text = text.replace(f"cv_folds = {cv}\n", "cv_folds = 0\n")
        tmp = os.path.join(out_dir, ".best-config.toml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out_dir, "best-config.toml"))
    print(f"halving {out_dir}: rungs {rungs}, eta {eta}; ranking (deepest rung first):")
    for n, t in enumerate(rows):
        scores = "  ".join(f"{r}:{t['scores'][str(r)]:.4f}" if t["scores"].get(str(r)) is not None else f"{r}:-"
                           for r in rungs if str(r) in t["scores"])
        print(f"  {n + 1:>2}. trial {t['trial']:>3}  {scores:<40} {' '.join(t['sets'])}")
    print(f"best: trial {best['trial']} ({' '.join(best['sets'])}); its config: {out_dir}/best-config.toml")
    return rows


def hyperband(spec, config, out_dir, min_steps, max_steps, eta, seed, launch, strata, extra, cv=0):
    """Hyperband (Li et al.): brackets s = s_max .. 0 of successive halving, bracket s starting
    ceil((s_max + 1) / (s + 1) * eta^s) trials at max_steps / eta^s steps (at least min_steps), each bracket's trials
    drawn afresh (trial indices continue across brackets). The best of the brackets' winners (all trained to max_steps)
    wins."""
    import shutil
    if not parse(spec)[1]:
        sys.exit("sweep.py hyperband: the spec needs random keys (uniform:, loguniform:, int:, choice:)")
    s_max = 0
    while max_steps // eta ** (s_max + 1) >= min_steps:
        s_max += 1
    os.makedirs(out_dir, exist_ok=True)
    brackets, next_trial = [], 0
    plan = [(math.ceil((s_max + 1) / (s + 1) * eta ** s), max(min_steps, max_steps // eta ** s))
            for s in range(s_max, -1, -1)]
    progress = StepProgress("hyperband", sum(halving_steps(n, r, max_steps, eta, max(1, cv)) for n, r in plan),
                            PROGRESS)
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta ** s)
        r = max(min_steps, max_steps // eta ** s)
        print(f"hyperband: bracket {s}: {n} trial(s) from {r} steps", flush=True)
        rows = halving(spec, config, os.path.join(out_dir, f"bracket-{s}"), n, r, max_steps, eta, seed, launch, strata,
                       extra, first_trial=next_trial, cv=cv, progress=progress)
        next_trial += n
        brackets.append({"bracket": s, "trials": n, "min_steps": r, "winner": rows[0]})
    finished = [b for b in brackets if b["winner"]["scores"].get(str(max_steps)) is not None]
    if not finished:
        sys.exit("sweep.py hyperband: no bracket finished a trial")
    best = min(finished, key=lambda b: b["winner"]["scores"][str(max_steps)])
    tmp = os.path.join(out_dir, ".hyperband.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"eta": eta, "max_steps": max_steps, "brackets": brackets, "best_bracket": best["bracket"]}, f,
                  indent=1)
    os.replace(tmp, os.path.join(out_dir, "hyperband.json"))
    shutil.copyfile(os.path.join(out_dir, f"bracket-{best['bracket']}", "best-config.toml"),
                    os.path.join(out_dir, "best-config.toml"))
    print(f"hyperband {out_dir}: {next_trial} trials in {len(brackets)} bracket(s); winners:")
    for b in brackets:
        w = b["winner"]
        score = w["scores"].get(str(max_steps))
        print(f"  bracket {b['bracket']} ({b['trials']} trials from {b['min_steps']} steps): trial {w['trial']} "
              + (f"val loss {score:.4f}" if score is not None else "failed") + f"  {' '.join(w['sets'])}")
    print(f"best: trial {best['winner']['trial']} ({' '.join(best['winner']['sets'])}) from bracket {best['bracket']}; "
          f"its config: {out_dir}/best-config.toml")


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
    elif cmd in ("halving", "hyperband"):
        import argparse
        extra = argv[argv.index("--") + 1:] if "--" in argv else []
        args = argv[2:argv.index("--")] if "--" in argv else argv[2:]
        ap = argparse.ArgumentParser(prog=f"sweep.py {cmd}")
        ap.add_argument("spec")
        ap.add_argument("--config", required=True)
        ap.add_argument("--dir", required=True)
        ap.add_argument("--trials", type=int, required=cmd == "halving")
        ap.add_argument("--min-steps", type=int, required=True)
        ap.add_argument("--max-steps", type=int, required=True)
        ap.add_argument("--eta", type=int, default=3)
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--cv", type=int, default=0, help="score each trial by K-fold cross-validation (0: off)")
        ap.add_argument("--launch", default="", help='e.g. "mpiexec -np 2" or "srun"')
        ap.add_argument("--strata", default=os.environ.get("STRATA_BIN", "build/default/strata"))
        ap.add_argument("--progress", action="store_true", help="progress lines on stderr even when not a terminal")
        ap.add_argument("--quiet", action="store_true", help="no progress lines (the default in batch logs)")
        a = ap.parse_args(args)
        global PROGRESS
        PROGRESS = a.progress or (not a.quiet and sys.stderr.isatty())
        if cmd == "halving":
            halving(a.spec, a.config, a.dir, a.trials, a.min_steps, a.max_steps, a.eta, a.seed, a.launch, a.strata, extra,
                    cv=a.cv)
        else:
            hyperband(a.spec, a.config, a.dir, a.min_steps, a.max_steps, a.eta, a.seed, a.launch, a.strata, extra,
                      cv=a.cv)
    else:
        sys.exit(f"sweep.py: unknown command '{cmd}'\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
