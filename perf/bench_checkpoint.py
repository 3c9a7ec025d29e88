#!/usr/bin/python3
"""Checkpoint save and load bandwidth on this machine: a gpt2-124M-shaped model (12 layers, d_model 768, 12 heads,
vocab 50304) with its AdamW state (3 x 124M float32 = 1.5 GB per checkpoint), saved and loaded by `strata` at 1 and
2 ranks (2 ranks: data parallel with ZeRO-1, so both ranks write), against the disk's sequential write bandwidth
measured in the same run with dd (conv=fsync: the data is on disk when dd returns, as it is when a checkpoint
is committed).

Save: the trainer's own figure (collective create .. write .. MPI_File_sync .. close, "checkpoint: saved ... in X s"),
plus the wall time the step loop was held (which adds the commit: fsync, rename, `latest`). Load: the resuming
run's "verified ... in X s" (every tensor read and checksummed, spread over the ranks) and "loaded in Y s" (each
rank reads its own hyperslabs). The page cache is dropped before each load where the machine allows it.

A benchmark, not a test. Medians over --repeats alternating repeats.

  /usr/bin/python3 perf/bench_checkpoint.py --repeats 3 --markdown
"""
import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = shutil.which("mpiexec") or "mpiexec"
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
MODEL = {"model.n_layer": 12, "model.n_head": 12, "model.d_model": 768, "model.vocab_size": 50304,
         "model.seq_len": 64}


def sh(cmd, **kw):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    return p.stdout + p.stderr


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def dd_write(path, mib):
    out = sh(["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={mib // 4}", "conv=fsync"])
    os.remove(path)
    m = re.search(r"([\d.]+) s, ", out)
    return mib * 1048576 / float(m.group(1)) / 1e9


def train(strata, out_dir, ranks, extra):
    cmd = [MPIEXEC, "--oversubscribe", "-np", str(ranks), strata, "train", "--config", os.path.join(out_dir, "c.toml")]
    for k, v in extra.items():
        cmd += ["--set", f"{k}={v}"]
    return sh(cmd)


def write_config(path, data, out_dir, ranks):
    values = dict(MODEL, **{"data.path": f'"{data}"', "train.out_dir": f'"{out_dir}"', "train.batch_size": 2,
                            "train.steps": 1, "train.eval_batches": 1, "parallel.dp": ranks,
                            "parallel.zero1": "true" if ranks > 1 else "false", "checkpoint.every": 1,
                            "checkpoint.keep_last": 1})
    sections = {}
    for k, v in values.items():
        s, name = k.split(".", 1)
        sections.setdefault(s, []).append(f"{name} = {v}")
    with open(path, "w") as f:
        f.write("".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items()))


def one_round(strata, data, work, ranks):
    out_dir = os.path.join(work, f"run{ranks}")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    write_config(os.path.join(out_dir, "c.toml"), data, out_dir, ranks)
    log = train(strata, out_dir, ranks, {})
    m = re.search(r"checkpoint: saved step 1 to .* \(([\d.]+) MiB in ([\d.]+) s", log)
    held = re.search(r"held the step loop for ([\d.]+) ms", log)
    mib, save_s = float(m.group(1)), float(m.group(2))
    dropped = drop_caches()
    log = train(strata, out_dir, ranks, {"checkpoint.resume": "auto"})
    v = re.search(r"verified ([\d.]+) MiB in ([\d.]+) s .*loaded in ([\d.]+) s", log)
    shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)
    return dict(mib=mib, save_s=save_s, held_s=float(held.group(1)) / 1e3, verify_s=float(v.group(2)),
                load_s=float(v.group(3)), dropped=dropped)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--strata", default=os.path.join(REPO, "build", "default", "strata"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strata-ckpt-bench-", dir="/tmp")
    try:
        text = os.path.join(work, "t.txt")
        with open(text, "w") as f:
            f.write("\n%\n".join(f"document {i}: " + "the quick brown fox jumps over the lazy dog. " * 20
                               for i in range(400)))
        data = os.path.join(work, "d.h5")
        sh([args.strata, "preprocess", "text", text, "-o", data, "--doc-separator", "%", "--quiet"])
        dd, rounds = [], {1: [], 2: []}
        for _ in range(args.repeats):
            dd.append(dd_write(os.path.join(work, "dd.bin"), 1536))
            for ranks in (1, 2):
                rounds[ranks].append(one_round(args.strata, data, work, ranks))
        dd_gbs = statistics.median(dd)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"# {datetime.date.today()} {os.cpu_count()} cores, {cpu}; dd write+fsync {dd_gbs:.2f} GB/s "
              f"(median of {args.repeats}: {', '.join(f'{x:.2f}' for x in dd)})")
        rows = []
        for ranks, rs in rounds.items():
            gb = rs[0]["mib"] * 1048576 / 1e9
            med = {k: statistics.median(r[k] for r in rs) for k in ("save_s", "held_s", "verify_s", "load_s")}
            rows.append((ranks, gb, med, all(r["dropped"] for r in rs)))
        if args.markdown:
            print("| date | ranks | checkpoint GB | save s | save GB/s | vs dd | step loop held s | verify GB/s "
                  "(cold) | load s | load GB/s |")
            print("|---|---|---|---|---|---|---|---|---|---|")
        for ranks, gb, med, cold in rows:
            save_gbs, load_gbs = gb / med["save_s"], gb / med["load_s"]
            line = (f"| {datetime.date.today()} | {ranks}{' (dp2, ZeRO-1)' if ranks > 1 else ''} | {gb:.2f} | "
                    f"{med['save_s']:.2f} | {save_gbs:.2f} | {save_gbs / dd_gbs:.2f} | {med['held_s']:.2f} | "
                    f"{gb / med['verify_s']:.2f}{'' if cold else ' (warm)'} | {med['load_s']:.2f} | {load_gbs:.2f} |")
            print(line if args.markdown else line.replace("|", " "))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
