#!/usr/bin/python3
"""Check Strata's learning-rate schedules (optim/lr_schedule.cpp, printed by lr_schedule_dump) against
torch.optim.lr_scheduler stepped through an optimizer, step by step, to 1e-12 relative.

  lr_schedule_reference.py --dump-exe PATH/lr_schedule_dump
      One line per schedule config, then "N passed, M failed"; exit 1 on any failure.
  lr_schedule_reference.py --dump-exe PATH/lr_schedule_dump --off-by-one
      The same with Strata's rates shifted by one step: must fail (the checker can fail).

The torch construction matching each schedule (W = warmup_steps, S = steps, D = max(1, S - W - 1)):
  warm-up (W >= 1): LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1)   lr * (s+1)/W for s < W
  then, from step W, by SequentialLR(milestones=[W]) (alone when W = 0):
    constant:        ConstantLR(factor=1, total_iters=0)
    cosine:          CosineAnnealingLR(T_max=D, eta_min=min_lr)
    linear:          LinearLR(start_factor=1, end_factor=min_lr/lr, total_iters=D)
    step:            StepLR(step_size, gamma)
    multistep:       MultiStepLR([m - W for m in milestones], gamma)   (Strata's milestones are absolute steps)
    exponential:     ExponentialLR(gamma)
    cosine_restarts: CosineAnnealingWarmRestarts(T_0=period, T_mult=mult, eta_min=min_lr)
    wsd:             ConstantLR(factor=1, total_iters=0), then from step S - Dd (Dd = max(1, round(fraction S)))
                     LinearLR(start_factor=1 - (1 - min_lr/lr)/Dd, end_factor=min_lr/lr, total_iters=Dd-1)
                     (torch has no wsd: this is its formula built from torch's pieces)
Step alignment: Strata's step s (0-based) is the rate the optimizer holds for its (s+1)-th optimizer.step(),
i.e. after s scheduler.step() calls (torch's order: optimizer.step() then scheduler.step()). The peak lr is
held at steps W-1 and W.
"""
import argparse
import subprocess
import sys
import warnings

import torch
from torch.optim import lr_scheduler

TOL = 1e-12

# (schedule, lr, min_lr, warmup_steps, steps, extra settings)
CONFIGS = [
    ("cosine", 3e-4, 3e-5, 10, 100, {}),  # the config defaults
    ("cosine", 1e-3, 0.0, 0, 50, {}),
    ("cosine", 6e-4, 6e-5, 1, 20, {}),
    ("cosine", 1.0, 0.1, 7, 8, {}),  # one step after warm-up: D = 1
    ("cosine", 2e-3, 1e-4, 5, 5, {}),  # warm-up only
    ("cosine", 3e-4, 3e-5, 200, 5000, {}),
    ("linear", 3e-4, 3e-5, 10, 100, {}),
    ("linear", 1e-3, 0.0, 0, 37, {}),
    ("linear", 0.5, 0.05, 3, 4, {}),
    ("linear", 6e-4, 6e-5, 1, 21, {}),
    ("constant", 3e-4, 3e-5, 10, 100, {}),
    ("constant", 1e-3, 0.0, 0, 10, {}),
    ("constant", 0.1, 0.0, 1, 5, {}),
    ("step", 1e-3, 0.0, 5, 60, dict(gamma=0.5, step_size=7)),
    ("step", 0.1, 0.0, 0, 30, dict(gamma=0.1, step_size=10)),
    ("step", 3e-4, 0.0, 1, 9, dict(gamma=0.9, step_size=1)),
    ("multistep", 1e-3, 0.0, 4, 50, dict(gamma=0.1, milestones=[10, 25, 40])),
    ("multistep", 0.2, 0.0, 0, 20, dict(gamma=0.5, milestones=[1, 2, 19])),
    ("exponential", 1e-3, 0.0, 3, 40, dict(gamma=0.95)),
    ("exponential", 0.5, 0.0, 0, 25, dict(gamma=0.8)),
    ("cosine_restarts", 1e-3, 1e-5, 5, 80, dict(restart_period=10, restart_mult=1)),
    ("cosine_restarts", 1e-3, 0.0, 0, 100, dict(restart_period=3, restart_mult=2)),
    ("cosine_restarts", 0.1, 0.01, 2, 50, dict(restart_period=1, restart_mult=3)),
    ("wsd", 1e-3, 1e-4, 10, 100, dict(decay_fraction=0.2)),
    ("wsd", 6e-4, 0.0, 0, 33, dict(decay_fraction=0.1)),
    ("wsd", 0.5, 0.05, 2, 10, dict(decay_fraction=0.01)),  # one decay step
    ("wsd", 1e-3, 1e-5, 0, 40, dict(decay_fraction=1.0)),  # all decay
]


def wsd_decay_steps(fraction, steps):
    return max(1, int(round(fraction * steps)))  # Strata rounds half away from zero: no .5 cases above


def torch_rates(schedule, lr, min_lr, warmup, steps, extra):
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([param], lr=lr)
    decay = max(1, steps - warmup - 1)
    phases, milestones = [], []
    if warmup > 0:
        phases.append(lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup - 1))
        milestones.append(warmup)
    if schedule == "constant":
        phases.append(lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
    elif schedule == "cosine":
        phases.append(lr_scheduler.CosineAnnealingLR(opt, T_max=decay, eta_min=min_lr))
    elif schedule == "linear":
        phases.append(lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=min_lr / lr, total_iters=decay))
    elif schedule == "step":
        phases.append(lr_scheduler.StepLR(opt, step_size=extra["step_size"], gamma=extra["gamma"]))
    elif schedule == "multistep":
        phases.append(lr_scheduler.MultiStepLR(opt, [m - warmup for m in extra["milestones"]], gamma=extra["gamma"]))
    elif schedule == "exponential":
        phases.append(lr_scheduler.ExponentialLR(opt, gamma=extra["gamma"]))
    elif schedule == "cosine_restarts":
        phases.append(lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=extra["restart_period"],
                                                               T_mult=extra["restart_mult"], eta_min=min_lr))
    elif schedule == "wsd":
        dd = wsd_decay_steps(extra["decay_fraction"], steps)
        if steps - dd > warmup:  # a stable phase
            phases.append(lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0))
            milestones.append(steps - dd)
        r = min_lr / lr
        if dd == 1:  # LinearLR's closed form divides by total_iters: hold min_lr instead
            phases.append(lr_scheduler.ConstantLR(opt, factor=r, total_iters=steps + 1))
        else:
            phases.append(lr_scheduler.LinearLR(opt, start_factor=1.0 - (1.0 - r) / dd, end_factor=r,
                                                total_iters=dd - 1))
    else:
        raise ValueError(schedule)
    sched = phases[0] if len(phases) == 1 else lr_scheduler.SequentialLR(opt, phases, milestones=milestones)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def strata_rates(exe, schedule, lr, min_lr, warmup, steps, extra, shift):
    cmd = [exe, "--schedule", schedule, "--lr", repr(lr), "--min-lr", repr(min_lr), "--warmup", str(warmup),
           "--steps", str(steps), "--shift", str(shift)]
    for key, value in extra.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else repr(value)
        cmd += ["--" + key.replace("_", "-"), text]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split("\n")
    rows = [line.split() for line in out if line.strip()]
    if [int(r[0]) for r in rows] != list(range(steps)):
        raise RuntimeError(f"{' '.join(cmd)}: expected steps 0..{steps - 1}")
    return [float(r[1]) for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump-exe", required=True)
    ap.add_argument("--off-by-one", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # SequentialLR steps its second scheduler with an epoch (deprecated)
    passed = failed = 0
    for config in CONFIGS:
        ours = strata_rates(args.dump_exe, *config, shift=1 if args.off_by_one else 0)
        ref = torch_rates(*config)
        worst, worst_step = 0.0, 0
        for s, (a, b) in enumerate(zip(ours, ref)):
            err = abs(a - b) / max(abs(a), abs(b)) if a != b else 0.0
            if err > worst:
                worst, worst_step = err, s
        ok = len(ours) == len(ref) and worst <= TOL
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {config}: worst rel err {worst:.2e} at step {worst_step} "
              f"(strata {ours[worst_step]!r}, torch {ref[worst_step]!r})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
