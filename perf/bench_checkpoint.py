#!/usr/bin/python3
"""Checkpoint save and load bandwidth on this machine: a gpt2-124M-shaped model (12 layers, d_model 768, 12 heads,
vocab 50304) with its AdamW state (3 x 124M float32 = 1.48 GB per checkpoint), saved and loaded by `strata` at 1 and
2 ranks (2 ranks: data parallel with ZeRO-1, so both ranks write), against the disk's sequential write bandwidth
measured in the same run with dd (conv=fsync: the data is on disk when dd returns, as it is when a checkpoint is
committed).

Each run trains 4 steps with a checkpoint after every step and keep_last = 1. Save: the trainer's own figure
(create, writes, sync, close: "checkpoint: saved ... in X s"; checkpoint.io = direct, the default) for the first
save and, as "steady", the median of saves 3 and 4. dd the same way: the first of 4 runs and the median of the
other 3. (On this VM a page-cache write into memory the guest has to back again costs several times a write into
pages just freed: a 1.5 GB pwrite took 3.0 s, then 0.3 s; direct writes do not go through the page cache.) Load: a resuming run's
"verified ... in X s" (every tensor read and checksummed, spread over the ranks) and "loaded in Y s" (each rank
reads its own hyperslabs), after dropping the page cache where the machine allows it. Async: the same run with
checkpoint.async = true; the step loop is held only for the copy to host buffers (median over the saves). The
io=hdf5 column: the same steady saves written by HDF5's collective H5Dwrite through MPI-IO instead.

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


def dd_write(path, mib, runs=4):
    """dd conv=fsync `runs` times in a row (the file removed in between): the first into memory the VM has to back
    again, the others into pages just freed, as a run's later checkpoints are (older ones pruned). GB/s each."""
    drop_caches()
    out = []
    for _ in range(runs):
        text = sh(["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={mib // 4}", "conv=fsync"])
        os.remove(path)
        out.append(mib * 1048576 / float(re.search(r"([\d.]+) s, ", text).group(1)) / 1e9)
    return out


def train(strata, out_dir, ranks, extra):
    cmd = [MPIEXEC, "--oversubscribe", "-np", str(ranks), strata, "train", "--config", os.path.join(out_dir, "c.toml")]
    for k, v in extra.items():
        cmd += ["--set", f"{k}={v}"]
    return sh(cmd)


def write_config(path, data, out_dir, ranks):
    values = dict(MODEL, **{"data.path": f'"{data}"', "train.out_dir": f'"{out_dir}"', "train.batch_size": 2,
                            "train.steps": 1, "train.eval_batches": 1, "train.eval_every": 0, "parallel.dp": ranks,
                            "parallel.zero1": "true" if ranks > 1 else "false", "checkpoint.every": 1,
                            "checkpoint.keep_last": 1})
    sections = {}
    for k, v in values.items():
        s, name = k.split(".", 1)
        sections.setdefault(s, []).append(f"{name} = {v}")
    with open(path, "w") as f:
        f.write("".join(f"[{s}]\n" + "\n".join(lines) + "\n\n" for s, lines in sections.items()))


def save_times(log):
    """(MiB, seconds) of each "checkpoint: saved" line."""
    return [(float(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"checkpoint: saved step \d+ to .* \(([\d.]+) MiB in ([\d.]+) s", log)]


def one_round(strata, data, work, ranks):
    out_dir = os.path.join(work, f"run{ranks}")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    write_config(os.path.join(out_dir, "c.toml"), data, out_dir, ranks)
    drop_caches()  # the same memory state as dd's first write
    # 4 steps, a checkpoint after each, keep_last 1: saves 3 and 4 write into the pages of pruned checkpoints.
    log = train(strata, out_dir, ranks, {"train.steps": 4})
    saves = save_times(log)
    mib = saves[0][0]
    dropped = drop_caches()
    log = train(strata, out_dir, ranks, {"train.steps": 4, "checkpoint.resume": "auto"})
    v = re.search(r"verified ([\d.]+) MiB in ([\d.]+) s .*loaded in ([\d.]+) s", log)
    shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)
    # The same saves through HDF5's own collective H5Dwrite (checkpoint.io = hdf5), for comparison.
    hdf5_saves = save_times(train(strata, out_dir, ranks, {"train.steps": 4, "checkpoint.io": '"hdf5"'}))
    shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)
    # The same saves in the background: the step loop is held only for the copy to host buffers.
    log = train(strata, out_dir, ranks, {"train.steps": 4, "checkpoint.async": "true"})
    copies = [float(x) / 1e3 for x in re.findall(r"copied to host buffers in ([\d.]+) ms", log)]
    shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)
    return dict(mib=mib, first_s=saves[0][1], steady_s=statistics.median(s for _, s in saves[2:]),
                hdf5_steady_s=statistics.median(s for _, s in hdf5_saves[2:]),
                verify_s=float(v.group(2)), load_s=float(v.group(3)), dropped=dropped,
                copy_s=statistics.median(copies))


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
        dd_first, dd_steady, rounds = [], [], {1: [], 2: []}
        for _ in range(args.repeats):
            runs = dd_write(os.path.join(work, "dd.bin"), 1416)
            dd_first.append(runs[0])
            dd_steady.append(statistics.median(runs[1:]))
            for ranks in (1, 2):
                rounds[ranks].append(one_round(args.strata, data, work, ranks))
        dd_gbs = statistics.median(dd_steady)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"# {datetime.date.today()} {os.cpu_count()} cores, {cpu}; dd write+fsync of 1.48 GB: first "
              f"{statistics.median(dd_first):.2f} GB/s, then {dd_gbs:.2f} GB/s (medians of {args.repeats})")
        if args.markdown:
            print("| date | ranks | checkpoint GB | first save s | steady save s | steady GB/s | vs dd steady | "
                  "io=hdf5 steady s | async: loop held s | verify GB/s (cold) | load s | load GB/s |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for ranks, rs in rounds.items():
            gb = rs[0]["mib"] * 1048576 / 1e9
            med = {k: statistics.median(r[k] for r in rs)
                   for k in ("first_s", "steady_s", "hdf5_steady_s", "verify_s", "load_s", "copy_s")}
            cold = all(r["dropped"] for r in rs)
            steady = gb / med["steady_s"]
            line = (f"| {datetime.date.today()} | {ranks}{' (dp2, ZeRO-1)' if ranks > 1 else ''} | {gb:.2f} | "
                    f"{med['first_s']:.2f} | {med['steady_s']:.2f} | {steady:.2f} | {steady / dd_gbs:.2f} | "
                    f"{med['hdf5_steady_s']:.2f} | "
                    f"{med['copy_s']:.3f} | {gb / med['verify_s']:.2f}{'' if cold else ' (warm)'} | "
                    f"{med['load_s']:.2f} | {gb / med['load_s']:.2f} |")
            print(line if args.markdown else line.replace("|", " "))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
