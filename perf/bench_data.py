#!/usr/bin/python3
"""Data pipeline on this machine: preprocessing throughput (MB/s of input text; byte-level and BPE, 1 and 2
ranks), BPE training time, the token reader (`strata dataset bench`: samples/s and MB/s of stored samples, 1 and 2
ranks) against the disk's sequential read bandwidth measured in the same run with dd (O_DIRECT, cold buffered
and page-cached), the step loop's wait on data with prefetch off and on, and (where `strata preprocess images`
exists) the image reader with and without augmentation.

A benchmark, not a test. Every measurement is repeated --repeats times, alternating, and the median reported.

Data, all under one `mktemp -d` directory in /tmp that is deleted at the end:
- corpus: the fortune files (/usr/share/games/fortunes, all but *.dat and *.u8, ~2.6 MB) concatenated --copies
  times; every document gets a last line "[copy N]", so de-duplication keeps the copies (it still drops the
  documents that are duplicates within one copy);
- preprocessed into --shards shards, byte-level (the reader's dataset: 2 bytes per token) and BPE (vocab 4096,
  trained by `strata preprocess bpe-train` on the plain fortune files).
1 rank runs `strata` directly (not bound: its prefetch thread may use the other core); 2 ranks run under
`mpiexec --bind-to core` (one rank per core).

  /usr/bin/python3 perf/bench_data.py --repeats 3 --markdown
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MPIEXEC = shutil.which("mpiexec") or "mpiexec"
FORTUNES = "/usr/share/games/fortunes"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1",
           OMP_NUM_THREADS="1")
MB = 1e6


def run(cmd, cwd=None, check=True):
    """Runs cmd; returns (stdout, stderr, wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if check and p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-3000:]}")
    return p.stdout, p.stderr, wall


def launcher(ranks):
    return [] if ranks == 1 else [MPIEXEC, "--oversubscribe", "--bind-to", "core", "-np", str(ranks)]


def machine():
    model, mem = "unknown CPU", 0
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
        with open("/proc/meminfo") as f:
            mem = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    os_name = ""
    try:
        with open("/etc/os-release") as f:
            os_name = next((ln.split("=", 1)[1].strip().strip('"') for ln in f if ln.startswith("PRETTY_NAME")), "")
    except OSError:
        pass
    return f"{model}, nproc {os.cpu_count()}, {mem / 2**20:.0f} GiB, {os_name}, kernel {os.uname().release}"


def mem_available():
    with open("/proc/meminfo") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemAvailable"))


def fortune_files():
    files = sorted(f for f in glob.glob(os.path.join(FORTUNES, "*"))
                   if os.path.isfile(f) and not f.endswith((".dat", ".u8")))
    if not files:
        sys.exit(f"error: no fortune files in {FORTUNES} (apt-get install fortunes)")
    return files


def write_corpus(files, copies, out):
    """Every file's documents (separated by lines equal to '%'), `copies` times, each with a last line '[copy N]'."""
    docs = []
    for path in files:
        with open(path, "rb") as f:
            cur = []
            for line in f:
                if line.rstrip(b"\r\n") == b"%":
                    docs.append(b"".join(cur))
                    cur = []
                else:
                    cur.append(line)
            docs.append(b"".join(cur))
    docs = [d if d.endswith(b"\n") else d + b"\n" for d in docs if d.strip()]
    with open(out, "wb") as f:
        for c in range(copies):
            tag = b"[copy %d]\n%%\n" % c
            f.write(b"".join(d + tag for d in docs))
    return len(docs) * copies, os.path.getsize(out)


def drop_caches():
    """True where the page cache could be dropped (root outside a read-only /proc)."""
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def dd(files, direct):
    """Sequential read of `files` one after another with dd bs=4M; returns MB/s over all of them."""
    total, seconds = 0, 0.0
    for path in files:
        cmd = ["dd", f"if={path}", "of=/dev/null", "bs=4M"] + (["iflag=direct"] if direct else [])
        _, err, _ = run(cmd)
        m = re.search(r"^(\d+) bytes .* copied, ([\d.e+-]+) s", err, re.M)
        if not m:
            sys.exit(f"error: cannot parse dd output: {err}")
        total += int(m.group(1))
        seconds += float(m.group(2))
    return total / seconds / MB


def preprocess(strata, ranks, corpus, out, tok=None, shards=8):
    if os.path.exists(out):
        shutil.rmtree(out)
    cmd = launcher(ranks) + [strata, "preprocess", "text", corpus, "--doc-separator", "%", "--shards", str(shards),
                             "-o", out, "--quiet"] + (["--bpe", tok] if tok else [])
    out_text, err, wall = run(cmd)
    m = re.search(r"from (\d+) bytes in ([\d.]+) s \(([\d.]+) MB/s\)", out_text + err)
    if not m:
        sys.exit(f"error: cannot parse preprocess output:\n{out_text}{err}")
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = f.read()
    return dict(bytes=int(m.group(1)), s=float(m.group(2)), mbps=float(m.group(3)), wall=wall, manifest=manifest)


def bench(strata, path, ranks=1, extra=()):
    """One `strata dataset bench` run: its JSON line plus the process wall time."""
    cmd = launcher(ranks) + [strata, "dataset", "bench", path] + [str(x) for x in extra]
    out, err, wall = run(cmd)
    line = next((ln for ln in out.splitlines() if ln.startswith("{")), None)
    if line is None:
        sys.exit(f"error: no JSON line from {' '.join(cmd)}:\n{out}{err}")
    r = json.loads(line)
    r["wall"] = wall
    return r


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=64, help="fortune corpus copies in the big corpus (~2.7 MB each)")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000, help="reader: batches per `dataset bench` run")
    ap.add_argument("--prefetch-steps", type=int, default=100, help="prefetch on/off runs: batches per run")
    ap.add_argument("--compute-ms", type=float, default=20.0, help="prefetch runs: simulated step compute")
    ap.add_argument("--strata", default=os.path.join(REPO, "build", "default", "strata"))
    ap.add_argument("--markdown", action="store_true", help="print the RESULTS.md table rows")
    args = ap.parse_args()
    strata = os.path.abspath(args.strata)
    if not os.access(strata, os.X_OK):
        sys.exit(f"error: {strata} not found (build first: cmake --build build/default --target strata)")
    files = fortune_files()
    fortune_bytes = sum(os.path.getsize(f) for f in files)
    # Text + byte-level dataset (2 B/token) + BPE dataset, per copy of the corpus, with some slack.
    need = args.copies * fortune_bytes * 4.5
    tmp_root = tempfile.gettempdir()
    free = shutil.disk_usage(tmp_root).free
    if need > 2e9 or need * 2 > free:
        sys.exit(f"error: --copies {args.copies} needs ~{need / 1e9:.1f} GB in {tmp_root} ({free / 1e9:.1f} GB free); "
                 f"keep it under 2 GB")
    if args.copies * fortune_bytes * 20 > mem_available():  # byte-level preprocess peaks at ~16x the text
        sys.exit(f"error: --copies {args.copies}: preprocessing needs ~{args.copies * fortune_bytes * 16 / 1e9:.1f} GB "
                 f"of memory, {mem_available() / 1e9:.1f} GB available")
    date = datetime.date.today().isoformat()
    start = time.perf_counter()
    version = run([strata, "--version"])[0].strip()
    print(f"machine: {machine()}; {version}; {date}")
    images_help = run([strata, "preprocess", "--help"])[0]
    tmp = tempfile.mkdtemp(prefix="strata-bench-data-", dir=tmp_root)
    try:
        corpus = os.path.join(tmp, "corpus.txt")
        n_docs, corpus_bytes = write_corpus(files, args.copies, corpus)
        print(f"corpus: {len(files)} fortune files ({fortune_bytes / MB:.2f} MB) x {args.copies} copies = "
              f"{n_docs} documents, {corpus_bytes / MB:.1f} MB; temporary data in {tmp}")

        # 1. BPE training on the plain fortune files, and 2. preprocessing of the big corpus.
        tok = os.path.join(tmp, "tok.json")
        bpe_train = []
        pre = {(t, n): [] for t in ("byte", "bpe") for n in (1, 2)}
        manifests = {}
        for r in range(args.repeats):
            out, err, wall = run([strata, "preprocess", "bpe-train"] + files +
                                 ["--doc-separator", "%", "--vocab-size", "4096", "-o", tok])
            m = re.search(r"from \d+ documents, (\d+) bytes in ([\d.]+) s", out + err)
            bpe_train.append(dict(s=float(m.group(2)) if m else float("nan"), wall=wall))
            for t in ("byte", "bpe"):
                for n in (1, 2):
                    res = preprocess(strata, n, corpus, os.path.join(tmp, t), tok if t == "bpe" else None, args.shards)
                    pre[(t, n)].append(res)
                    manifests.setdefault(t, set()).add(res["manifest"])
        identical = {t: len(v) == 1 for t, v in manifests.items()}
        os.remove(corpus)  # the reader's disk figures should not share the page cache with it
        shutil.rmtree(os.path.join(tmp, "bpe"))
        dataset = os.path.join(tmp, "byte")
        with open(os.path.join(dataset, "manifest.json")) as f:
            manifest = json.load(f)
        shards = [os.path.join(dataset, e["file"]) for e in manifest["splits"]["train"]]
        train_bytes = 2 * sum(e["tokens"] for e in manifest["splits"]["train"])  # uint16 ids
        shard_bytes = sum(os.path.getsize(s) for s in shards)

        # A single-file dataset (no checksum pass at open) for the fixed cost of a `dataset bench` process.
        small = os.path.join(tmp, "fortunes.h5")
        run([strata, "preprocess", "text"] + files + ["--doc-separator", "%", "-o", small, "--quiet"])

        # 3. disk and reader, 4. prefetch, alternating within each repeat.
        can_drop = drop_caches()
        reader_args = ["--seq-len", 256, "--batch", 64, "--steps", args.steps, "--prefetch", 2]
        dd_direct, dd_cold, dd_cached, base, opens = [], [], [], [], []
        reader = {"warm1": [], "warm2": [], "cold1": []}
        pf = {0: [], 2: []}
        for r in range(args.repeats):
            subprocess.run(["sync"])
            dd_direct.append(dd(shards, direct=True))
            if can_drop:
                drop_caches()
                dd_cold.append(dd(shards, direct=False))
            dd(shards, direct=False)  # warm the page cache
            dd_cached.append(dd(shards, direct=False))
            for _ in range(3):  # the open's share of the process wall: --steps 1 against a file with no checksum pass
                b = bench(strata, small, 1, ["--steps", 1, "--prefetch", 0])
                base.append(b["wall"] - b["seconds"])
                o = bench(strata, dataset, 1, ["--seq-len", 256, "--steps", 1, "--prefetch", 0])
                opens.append(o["wall"] - o["seconds"])
            reader["warm1"].append(bench(strata, dataset, 1, reader_args))
            reader["warm2"].append(bench(strata, dataset, 2, reader_args))
            if can_drop:
                drop_caches()
                reader["cold1"].append(bench(strata, dataset, 1, reader_args))
            for k in (0, 2):
                pf[k].append(bench(strata, dataset, 1, ["--seq-len", 256, "--batch", 64, "--steps", args.prefetch_steps,
                                                        "--prefetch", k, "--compute-ms", args.compute_ms]))

        # 5. images, where `strata preprocess images` exists.
        images, images_note = {}, None
        digits_sh = os.path.join(REPO, "data", "digits.sh")
        if not re.search(r"^\s+images\s", images_help, re.M):
            images_note = "skipped: `strata preprocess images` does not exist in this build"
        elif not os.path.exists(digits_sh):
            images_note = "skipped: data/digits.sh does not exist"
        else:
            digits = os.path.join(tmp, "digits")
            p = subprocess.run(["bash", digits_sh, digits, strata], env=ENV, capture_output=True, text=True, cwd=REPO)
            if p.returncode != 0:
                tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or ["?"]
                images_note = f"skipped: data/digits.sh failed ({p.returncode}): {tail[0]}"
            else:
                aug = ["--crop-padding", 1, "--flip", "--noise-std", 0.1]
                images = {"none": [], "crop 1 + flip + noise 0.1": []}
                for r in range(args.repeats):
                    for label, extra in (("none", []), ("crop 1 + flip + noise 0.1", aug)):
                        images[label].append(bench(strata, digits, 1, ["--batch", 256, "--steps", 200, "--prefetch", 2]
                                                   + extra))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Medians and printing.
    d_direct, d_cached = statistics.median(dd_direct), statistics.median(dd_cached)
    d_cold = statistics.median(dd_cold) if dd_cold else None
    overhead = statistics.median(base)
    print(f"\n1. bpe-train vocab 4096 on the fortune files ({fortune_bytes / MB:.2f} MB): "
          f"{med(bpe_train, 's'):.1f} s as printed by strata, {med(bpe_train, 'wall'):.2f} s process wall")
    pre_rows = []
    for t in ("byte", "bpe"):
        for n in (1, 2):
            rows = pre[(t, n)]
            mbps = corpus_bytes / MB / med(rows, "s")
            pre_rows.append(dict(t=t, n=n, s=med(rows, "s"), wall=med(rows, "wall"), mbps=mbps))
    for row in pre_rows:
        base_row = next(x for x in pre_rows if x["t"] == row["t"] and x["n"] == 1)
        row["speedup"] = row["mbps"] / base_row["mbps"]
        print(f"2. preprocess text {row['t']:<4} {row['n']} rank(s): {row['s']:6.2f} s ({row['wall']:.2f} s wall)  "
              f"{row['mbps']:6.1f} MB/s of text  x{row['speedup']:.2f} vs 1 rank")
    print(f"   output identical for 1 and 2 ranks (manifest checksums): "
          f"{', '.join(f'{t}: {ok}' for t, ok in identical.items())}")
    print(f"3. disk: {len(shards)} byte-level train shards, {shard_bytes / MB:.1f} MB: dd iflag=direct bs=4M "
          f"{d_direct:.0f} MB/s; " + (f"after drop_caches (cold, buffered) {d_cold:.0f} MB/s; " if d_cold else
                                      "page cache could not be dropped (no cold figures); ") +
          f"cached {d_cached:.0f} MB/s")
    reader_rows = []
    for key, label, n in (("warm1", "warm", 1), ("warm2", "warm", 2), ("cold1", "after drop_caches", 1)):
        rows = reader[key]
        if not rows:
            continue
        row = dict(label=label, n=n, sps=med(rows, "samples_per_s"), mbps=med(rows, "mb_per_s"))
        if n == 1:  # open = process wall - timed loop - fixed process cost; the open reads every shard (checksums)
            row["open_s"] = (statistics.median(opens) if key == "warm1" else
                             statistics.median(x["wall"] - x["seconds"] for x in rows)) - overhead
            row["open_mbps"] = train_bytes / MB / row["open_s"]
        reader_rows.append(row)
        print(f"   reader {label:<17} {n} rank(s): {row['sps']:9.0f} samples/s (runs {min(x['samples_per_s'] for x in rows):.0f}"
              f"-{max(x['samples_per_s'] for x in rows):.0f})  {row['mbps']:7.2f} MB/s  "
              f"= {row['mbps'] / d_direct:.4f} x dd direct, {row['mbps'] / d_cached:.5f} x dd cached" +
              (f"; open (checksum pass over {train_bytes / MB:.0f} MB) {row['open_s']:.2f} s = "
               f"{row['open_mbps']:.0f} MB/s" if "open_s" in row else ""))
    pf_rows = []
    for k in (0, 2):
        rows = pf[k]
        row = dict(k=k, wait=med(rows, "steady_wait_ms_median"),
                   mean_wait=statistics.median(x["wait_ms_total"] / x["steps"] for x in rows),
                   step=statistics.median(1000 * x["seconds"] / x["steps"] for x in rows))
        pf_rows.append(row)
        print(f"4. prefetch {k}, compute {args.compute_ms:g} ms/step: steady wait median {row['wait']:.3f} ms, "
              f"mean wait {row['mean_wait']:.3f} ms/step, {row['step']:.2f} ms/step")
    img_rows = []
    if images:
        for label, rows in images.items():
            img_rows.append(dict(label=label, sps=med(rows, "samples_per_s"), mbps=med(rows, "mb_per_s")))
            print(f"5. images (digits), batch 256, augmentation {label}: {img_rows[-1]['sps']:.0f} samples/s, "
                  f"{img_rows[-1]['mbps']:.2f} MB/s")
    else:
        print(f"5. images: {images_note}")
    print(f"total {time.perf_counter() - start:.0f} s")

    if args.markdown:
        cmd = "/usr/bin/python3 perf/bench_data.py " + " ".join(sys.argv[1:])
        print(f"\nCommand: `{cmd}`")
        print("\n| date | what | input | ranks | median s | MB/s of text | vs 1 rank |")
        print("|---|---|---|---|---|---|---|")
        for row in pre_rows:
            what = "preprocess text, byte-level" if row["t"] == "byte" else "preprocess text, BPE 4096"
            print(f"| {date} | {what} | {args.copies}x fortunes, {corpus_bytes / MB:.0f} MB | {row['n']} | "
                  f"{row['s']:.2f} | {row['mbps']:.1f} | {row['speedup']:.2f} |")
        print(f"| {date} | bpe-train, vocab 4096 | fortunes, {fortune_bytes / MB:.1f} MB | 1 | "
              f"{med(bpe_train, 's'):.1f} (process {med(bpe_train, 'wall'):.2f}) | "
              f"- | - |")
        print("\n| date | what | ranks | samples/s | MB/s | vs dd direct | vs dd cached |")
        print("|---|---|---|---|---|---|---|")
        src = f"{len(shards)} train shards, {shard_bytes / MB:.0f} MB"
        print(f"| {date} | dd iflag=direct bs=4M ({src}) | - | - | {d_direct:.0f} | 1.00 | {d_direct / d_cached:.3f} |")
        if d_cold:
            print(f"| {date} | dd bs=4M after drop_caches (cold, buffered) | - | - | {d_cold:.0f} | "
                  f"{d_cold / d_direct:.2f} | {d_cold / d_cached:.3f} |")
        print(f"| {date} | dd bs=4M, page cache (after a warm read) | - | - | {d_cached:.0f} | "
              f"{d_cached / d_direct:.2f} | 1.00 |")
        for row in reader_rows:
            print(f"| {date} | dataset bench, seq 256, batch 64, prefetch 2, {row['label']} | {row['n']} | "
                  f"{row['sps']:.0f} | {row['mbps']:.1f} | {row['mbps'] / d_direct:.4f} | "
                  f"{row['mbps'] / d_cached:.5f} |")
        for row in reader_rows:
            if "open_s" in row:
                print(f"| {date} | dataset open (checksum pass, sequential, {train_bytes / MB:.0f} MB), "
                      f"{row['label']} | 1 | - | {row['open_mbps']:.0f} | {row['open_mbps'] / d_direct:.2f} | "
                      f"{row['open_mbps'] / d_cached:.3f} |")
        print("\n| date | compute ms/step | prefetch | steady wait ms (median) | mean wait ms/step | ms/step |")
        print("|---|---|---|---|---|---|")
        for row in pf_rows:
            print(f"| {date} | {args.compute_ms:g} | {row['k']} | {row['wait']:.3f} | {row['mean_wait']:.3f} | "
                  f"{row['step']:.2f} |")
        if img_rows:
            print("\n| date | dataset | batch | augmentation | samples/s | MB/s |")
            print("|---|---|---|---|---|---|")
            for row in img_rows:
                print(f"| {date} | digits (8x8, uint8) | 256 | {row['label']} | {row['sps']:.0f} | {row['mbps']:.2f} |")
        else:
            print(f"\nImages: {images_note}.")


if __name__ == "__main__":
    main()
