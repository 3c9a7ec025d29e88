#!/usr/bin/python3
"""GPU training throughput: Strata vs PyTorch eager on the same GPT, batch, sequence and precision, with MFU.

A benchmark, not a test (jobs/device-check.sh runs it on the GPU machine). For each config it trains Strata
(`strata train`, train.precision as given) and the PyTorch twin (perf/torch_gpt.py, eager, torch.autocast for
bf16) on one device, takes the median ms/step after --warmup steps, and prints tokens/s, achieved TFLOP/s, MFU
against --peak-tflops (H100/H200 SXM dense bf16: 989.4) and the strata/torch ratio.

  perf/bench_gpu.py --strata build/device/strata --config gpt2-124M gpt2-350M --precision bf16
  perf/bench_gpu.py --strata build/default/strata --config tiny --device cpu      # dry run on a CPU

FLOPs per token as perf/bench_train.py (6N + the tied head + attention, no causal discount).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_train  # noqa: E402  (dataset and config writers, FLOPs per token)

CONFIGS = {
    "tiny": dict(n_layer=2, n_head=4, d_model=128, vocab_size=1024, seq_len=128, batch_size=4),
    "gpt2-124M": dict(n_layer=12, n_head=12, d_model=768, vocab_size=50304, seq_len=1024, batch_size=16),
    "gpt2-350M": dict(n_layer=24, n_head=16, d_model=1024, vocab_size=50304, seq_len=1024, batch_size=8),
}


def torch_side(c, steps, warmup, precision, device):
    import contextlib
    import torch
    import torch_gpt
    torch.manual_seed(0)
    model = torch_gpt.GPT(c["n_layer"], c["n_head"], c["d_model"], c["vocab_size"], c["seq_len"]).to(device)
    opt = torch_gpt.make_adamw(model, bench_train.LR)
    B, T, V = c["batch_size"], c["seq_len"], c["vocab_size"]
    x = torch.randint(0, V, (B, T), device=device)
    y = torch.randint(0, V, (B, T), device=device)
    ms = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with (torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()):
            torch_gpt.train_step(model, opt, x, y, 1.0)
        if device == "cuda":
            torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms[warmup:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--config", nargs="+", choices=list(CONFIGS), default=["gpt2-124M", "gpt2-350M"])
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--peak-tflops", type=float, default=989.4, help="dense peak of the device at --precision")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="strata-gpu-bench-") as tmp:
        for name in args.config:
            c = dict(CONFIGS[name])
            data = os.path.join(tmp, f"{name}.h5")
            bench_train.write_dataset(data, c, args.steps)
            out_dir = os.path.join(tmp, name)
            toml = os.path.join(tmp, f"{name}.toml")
            bench_train.write_toml(toml, c, args.steps, data, out_dir, args.precision)
            s_ms = bench_train.run_strata(args.strata, toml, out_dir, 1, args.warmup)["ms"]
            t_ms = torch_side(c, args.steps, args.warmup, args.precision, args.device)
            tokens = c["batch_size"] * c["seq_len"]
            fpt = bench_train.flops_per_token(c)
            row = dict(config=name, precision=args.precision, device=args.device, batch=c["batch_size"],
                       seq=c["seq_len"], strata_ms=s_ms, torch_ms=t_ms, strata_tok_s=tokens * 1e3 / s_ms,
                       torch_tok_s=tokens * 1e3 / t_ms)
            for side in ("strata", "torch"):
                tflops = row[f"{side}_tok_s"] * fpt / 1e12
                row[f"{side}_tflops"] = tflops
                row[f"{side}_mfu"] = tflops / args.peak_tflops
            row["ratio"] = row["strata_tok_s"] / row["torch_tok_s"]
            results.append(row)
            print(f"== {name} ({args.precision}, {args.device}, batch {c['batch_size']} x seq {c['seq_len']})")
            for side in ("strata", "torch"):
                print(f"   {side:6s}: {row[side + '_ms']:9.1f} ms/step {row[side + '_tok_s']:10.0f} tok/s "
                      f"{row[side + '_tflops']:8.2f} TFLOP/s  MFU {100 * row[side + '_mfu']:.1f}% "
                      f"of {args.peak_tflops:g}")
            print(f"   ratio strata/torch tokens/s: {row['ratio']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
