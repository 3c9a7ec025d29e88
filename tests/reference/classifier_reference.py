#!/usr/bin/python3
"""Check a Strata classifier dump (classifier_dump) against its PyTorch twin (perf/torch_classifiers.py).

  classifier_reference.py --dump DUMP.h5
      Load the twin from the dump's config and weights/, compare logits, loss, every gradient (rel L2 <= 1e-5)
      and the losses of `steps` AdamW steps with gradient clipping on the same batch (rel <= 1e-4). Prints one
      line per check, then "N passed, M failed"; exit 1 on any failure.
  classifier_reference.py --dump DUMP.h5 --corrupt
      The same with one gradient of the dump perturbed by 1e-3 relative: must fail (the checker can fail).
With train.dropout, dropout_keys/<site> holds each site's mask key per pass (int64 holding the uint64 bits): pass k
trains with the masks of step k, and the twin draws them (perf/dropout_masks.py). With distillation (classifier_dump
--teacher-seed), teacher_logits [rows, classes] and attributes distill_temperature, distill_alpha: the loss is
(1 - alpha) cross_entropy + alpha T^2 kl_div(log_softmax(s / T), softmax(t / T), batchmean).
"""
import argparse
import os
import sys
import tomllib

import h5py
import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "perf"))
import dropout_masks  # noqa: E402
import torch_classifiers  # noqa: E402
import torch_gpt  # noqa: E402

TOL_FWD = 1e-5
TOL_STEPS = 1e-4


def rel_l2(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else float(np.linalg.norm(a))


def check(path, corrupt):
    results = []

    def record(name, err, tol, expect_above=False):
        ok = err > tol if expect_above else err <= tol
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: rel err {err:.3e} (tol {tol:.0e})")

    with h5py.File(path, "r") as f:
        cfg = tomllib.loads(f.attrs["config"])
        steps = int(f.attrs["steps"])
        model = torch_classifiers.build(cfg["model"])
        params = dict(model.named_parameters())
        missing = set(params) ^ set(f["weights"].keys())
        if missing:
            print(f"FAIL parameter names differ: {sorted(missing)}")
            return False
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(torch.from_numpy(f["weights/" + name][()]))
        x = torch.from_numpy(f["x"][()])
        y = torch.from_numpy(f["y"][()].astype(np.int64))
        ref_logits, ref_loss, ref_losses = f["logits"][()], float(f["loss"][0]), f["losses"][()]
        ref_grads = {n: f["grads/" + n][()] for n in params}
        keys = {site: f["dropout_keys/" + site][()].astype(np.uint64) for site in f["dropout_keys"]} \
            if "dropout_keys" in f else {}
        teacher = torch.from_numpy(f["teacher_logits"][()]) if "teacher_logits" in f else None
        T, alpha = float(f.attrs.get("distill_temperature", 1.0)), float(f.attrs.get("distill_alpha", 0.0))

    def loss_of(logits):
        smoothing = torch_classifiers.LABEL_SMOOTHING
        if teacher is None:
            return torch.nn.functional.cross_entropy(logits, y.reshape(-1), label_smoothing=smoothing)
        return torch_gpt.distillation_loss(logits, y.reshape(-1), teacher, T, alpha, smoothing)

    if corrupt:
        name = sorted(ref_grads)[0]
        g = ref_grads[name]
        noise = np.random.default_rng(3).standard_normal(g.shape)
        ref_grads[name] = g + noise * (1e-3 * np.linalg.norm(g) / np.linalg.norm(noise))

    t = cfg["train"]
    torch_classifiers.LABEL_SMOOTHING = float(t.get("label_smoothing", 0.0))
    rate = float(t.get("dropout", 0.0))

    def masks_of_pass(k):
        return dropout_masks.Masks({site: int(v[k]) for site, v in keys.items()}, lambda site: rate) if keys else None

    print(f"model: {cfg['model']}, label smoothing {torch_classifiers.LABEL_SMOOTHING}, dropout {rate if keys else 0}")
    if keys:
        # The masks matter: the twin without them is told apart.
        torch_classifiers.DROPOUT = None
        with torch.no_grad():
            record("twin without dropout is told apart (logits)", rel_l2(model(x).numpy(), ref_logits), TOL_FWD,
                   expect_above=True)
    torch_classifiers.DROPOUT = masks_of_pass(0)
    logits = model(x)
    loss = loss_of(logits)
    loss.backward()
    if teacher is not None:  # the soft loss matters: the plain cross-entropy is told apart
        plain = torch.nn.functional.cross_entropy(logits.detach(), y.reshape(-1))
        record("plain cross-entropy is told apart (loss)", abs(plain.item() - ref_loss) / abs(ref_loss), TOL_FWD,
               expect_above=True)
    record("logits", rel_l2(logits.detach().numpy(), ref_logits), TOL_FWD)
    record("loss", abs(loss.item() - ref_loss) / abs(ref_loss), TOL_FWD)
    for name, p in params.items():
        record(f"grad {name}", rel_l2(p.grad.numpy(), ref_grads[name]), TOL_FWD)
    opt = torch_gpt.make_adamw(model, t["lr"], (t["beta1"], t["beta2"]), t["eps"], t["weight_decay"])
    for k in range(steps + 1):
        torch_classifiers.DROPOUT = masks_of_pass(k)
        step_loss = torch_gpt.train_step(model, opt, x, y, t["grad_clip"], loss_of) \
            if k < steps else loss_of(model(x)).detach()
        record(f"losses[{k}]", abs(step_loss.item() - float(ref_losses[k])) / abs(float(ref_losses[k])), TOL_STEPS)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return passed == len(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--corrupt", action="store_true", help="perturb one gradient of the dump: the check must fail")
    args = ap.parse_args()
    torch.set_num_threads(1)
    return 0 if check(args.dump, args.corrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
