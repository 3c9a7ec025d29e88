#!/usr/bin/env bash
# The GPU check, run on the GPU machine from the repository root (what the device tool does), in under 8 minutes:
#   1. what the machine has (GPU, driver, CUDA, PyTorch, whether the bundled binaries load);
#   2. every unit test on the CUDA backend;
#   3. the PyTorch reference test: Strata's GPT on the GPU (fp32 and bf16) against the twin;
#   4. two ranks sharing the GPU through MPI (dp 2 and tp 2 against one rank);
#   5. throughput of GPT-2 124M and 350M (seq 1024, bf16) with MFU against the dense bf16 peak, and PyTorch eager
#      on the same model in the same run (perf/bench_gpu.py).
# Each step prints PASS/FAIL/SKIP with its reason; a summary goes to $OUT/device-check.md (the device tool
# brings $OUT back). Exit status: the number of failed steps.
#
#   jobs/device-check.sh [--bundle DIR]             # on the GPU machine (DIR from jobs/device-bundle.sh)
#   jobs/device-check.sh --dry-run [--build DIR]    # here, on a CPU build: the same steps, small sizes, no GPU
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bundle="$here/build/device-carry" build="$here/build/default" dry=0
out=${OUT:-/tmp/strata-device-check}
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "device-check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# The Python with PyTorch: $PYTHON, else python3 if it imports torch, else Debian's.
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  "$PYTHON" -c 'import torch' 2>/dev/null || { [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3; }
fi
mkdir -p "$out"
work=$(mktemp -d /tmp/strata-device-check.XXXXXX)
summary="$out/device-check.md"
failed=0
t0=$(date +%s)
say() { echo "$*" | tee -a "$summary"; }
step() {  # step NAME STATUS DETAIL
  say "- **$1**: $2 — $3"
  [ "$2" = FAIL ] && failed=$((failed + 1))
  return 0
}
echo "# device check $(date -u +%FT%TZ)$([ $dry = 1 ] && echo ' (dry run on the CPU)')" >"$summary"

# ---- 0. Binaries: the unpacked bundle (GPU machine) or a host build (dry run).
if [ $dry = 1 ]; then
  bin="$build"
  strata="$build/strata"
  unit_bins=$(ls "$build"/tests/unit_* 2>/dev/null | grep -v '\.cmake$' | grep -v '_include' || true)
  dump="$build/tests/reference/reference_dump"
  mpirun=$(command -v mpirun || true)
  device=cpu
else
  [ -f "$bundle/bundle.tar.xz" ] || { step bundle FAIL "$bundle/bundle.tar.xz missing (run jobs/device-bundle.sh here first)"; exit 1; }
  tar -C "$work" -xJf "$bundle/bundle.tar.xz"
  bin="$work/bin"
  strata="$bin/strata"
  unit_bins=$(ls "$bin"/unit_* 2>/dev/null || true)
  dump="$bin/reference_dump"
  export LD_LIBRARY_PATH="$work/lib:${LD_LIBRARY_PATH:-}"
  # NCCL: the toolkit's, else the one PyTorch ships.
  torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)
  nccl_dir=$("$PYTHON" -c 'import os, nvidia.nccl as n; print(os.path.join(os.path.dirname(n.__file__), "lib"))' 2>/dev/null || true)
  for d in /usr/local/cuda/lib64 "$nccl_dir" "$torch_lib"; do [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"; done
  pytag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
  export OPAL_PREFIX="$work/ompi" PATH="$work/ompi/bin:$PATH" PYTHONPATH="$work/python/$pytag:${PYTHONPATH:-}"
  export OMPI_MCA_plm_rsh_agent=false
  mpirun="$work/ompi/bin/mpirun"
  device=cuda
  cat "$work/manifest.txt" >>"$summary"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_PROC_BIND=false OPENBLAS_NUM_THREADS=1

# ---- 1. The machine.
say "## machine"
say "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
if command -v nvidia-smi >/dev/null; then
  say "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
else
  say "- GPU: none (nvidia-smi not found)"
fi
say "- nvcc: $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' || echo none); glibc $(ldd --version | head -1 | awk '{print $NF}')"
say "- python: $("$PYTHON" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
say "- h5py: $("$PYTHON" -c 'import h5py; print(h5py.__version__)' 2>&1 | tail -1)"
missing=$(ldd "$strata" 2>&1 | grep -c 'not found' || true)
if [ ! -x "$strata" ]; then
  step load FAIL "$strata not found"
elif [ "$missing" != 0 ]; then
  step load FAIL "$(ldd "$strata" | grep 'not found' | tr '\n' ' ')"
else
  step load PASS "$(basename "$strata") loads ($("$strata" --version 2>&1 | head -1))"
fi

# ---- 2. Unit tests (on the CUDA backend on the GPU machine).
say "## steps"
if [ -z "$unit_bins" ]; then
  step unit FAIL "no unit test binaries"
else
  passed=0 bad=""
  for u in $unit_bins; do
    log="$out/$(basename "$u").log"
    if timeout 180 "$u" --gtest_brief=1 >"$log" 2>&1; then
      passed=$((passed + $(sed -n 's/.*PASSED.* \([0-9]*\) test.*/\1/p' "$log" | tail -1)))
    else
      bad="$bad $(basename "$u")"
    fi
  done
  [ -z "$bad" ] && step unit PASS "$passed tests in $(echo $unit_bins | wc -w) binaries" ||
    step unit FAIL "failing:$bad ($passed tests passed; logs in \$OUT)"
fi

# ---- 3. PyTorch reference: the GPU's results against the twin, fp32 and bf16.
for precision in fp32 bf16; do
  f="$work/ref_$precision.h5"
  if ! timeout 120 "$dump" --config "$here/tests/reference/odd_shapes.toml" --set train.precision=$precision \
      --out "$f" --steps 5 >"$out/reference_$precision.log" 2>&1; then
    step "reference $precision" FAIL "reference_dump failed: $(tail -1 "$out/reference_$precision.log")"
  elif timeout 180 "$PYTHON" "$here/tests/reference/gpt_reference.py" --dump "$f" >>"$out/reference_$precision.log" 2>&1; then
    step "reference $precision" PASS "$(tail -1 "$out/reference_$precision.log")"
  else
    step "reference $precision" FAIL "$(grep -m3 FAIL "$out/reference_$precision.log" | tr '\n' ' ')$(tail -1 "$out/reference_$precision.log")"
  fi
done

# ---- 4. Two ranks sharing one GPU: dp 2 and tp 2 give the one-rank run.
data="$work/tokens.h5"
if "$PYTHON" - "$data" <<'EOF' 2>"$out/two_ranks.log"
import sys, numpy as np, h5py
rng = np.random.default_rng(7)
with h5py.File(sys.argv[1], "w") as f:
    f.attrs.update({"format": "strata-tokens", "format_version": np.int64(1), "vocab_size": np.int64(256),
                    "eot_id": np.int64(255), "tokenizer": "byte"})
    base = rng.integers(0, 64, size=4096)
    f["train/tokens"] = np.tile(base, 8).astype(np.uint16)
    f["val/tokens"] = base[:2048].astype(np.uint16)
EOF
then
  cfg="$work/two_ranks.toml"
  printf '[model]\nn_layer = 2\nn_head = 4\nd_model = 64\nvocab_size = 256\nseq_len = 32\n[data]\npath = "%s"\n[train]\nbatch_size = 8\nsteps = 10\nlr = 1e-3\nwarmup_steps = 0\neval_every = 0\nlog_every = 1\n' "$data" >"$cfg"
  losses() { "$PYTHON" -c "import json,sys; print(' '.join('%.6f' % json.loads(l)['loss'] for l in open(sys.argv[1]) if '\"loss\"' in l))" "$1/metrics.jsonl"; }
  ok=1 detail=""
  timeout 120 "$strata" train --config "$cfg" --set train.out_dir="$work/one" >>"$out/two_ranks.log" 2>&1 || ok=0
  for layout in dp tp; do
    [ $ok = 1 ] || break
    if [ -z "$mpirun" ]; then ok=0; detail="no mpirun"; break; fi
    timeout 150 "$mpirun" -np 2 "$strata" train --config "$cfg" --set parallel.$layout=2 \
      --set train.out_dir="$work/$layout" >>"$out/two_ranks.log" 2>&1 || { ok=0; detail="$layout 2 failed"; break; }
    "$PYTHON" - "$work/one" "$work/$layout" <<'EOF' >>"$out/two_ranks.log" 2>&1 || { ok=0; detail="$layout 2 differs from one rank"; }
import json, sys
read = lambda d: [json.loads(l)["loss"] for l in open(d + "/metrics.jsonl") if '"loss"' in l]
a, b = read(sys.argv[1]), read(sys.argv[2])
worst = max(abs(x / y - 1) for x, y in zip(a, b))
print(f"{sys.argv[2]}: {len(a)} steps, worst relative loss difference {worst:.2e}")
sys.exit(0 if len(a) == len(b) == 10 and worst < 1e-5 else 1)
EOF
  done
  if [ $ok = 1 ]; then
    step "two ranks" PASS "dp 2 and tp 2 on one $device follow one rank (loss $(losses "$work/one" | awk '{print $1" -> "$NF}'); $(grep -m1 'device buffers' "$out/two_ranks.log" | sed 's/^ *//'))"
  else
    step "two ranks" FAIL "$detail: $(tail -2 "$out/two_ranks.log" | tr '\n' ' ')"
  fi
else
  step "two ranks" FAIL "could not write the dataset: $(tail -1 "$out/two_ranks.log")"
fi

# ---- 5. Throughput and MFU against PyTorch eager.
if [ $dry = 1 ]; then
  bench=(--config tiny --device cpu --precision bf16 --steps 4 --warmup 1 --peak-tflops 0.2)
else
  bench=(--config gpt2-124M gpt2-350M --device cuda --precision bf16 --steps 12 --warmup 4)
fi
if timeout 300 "$PYTHON" "$here/perf/bench_gpu.py" --strata "$strata" "${bench[@]}" --json "$out/throughput.json" \
    >"$out/throughput.log" 2>&1; then
  step throughput PASS "see below"
  sed 's/^/    /' "$out/throughput.log" | tee -a "$summary"
else
  step throughput FAIL "$(tail -3 "$out/throughput.log" | tr '\n' ' ')"
fi

say "## result: $failed failed step(s) in $(( $(date +%s) - t0 )) s"
rm -rf "$work"
exit "$failed"
