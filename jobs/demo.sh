#!/usr/bin/env bash
# The README's demo: installs the dependencies (Debian packages, as root), builds, builds the fortunes
# dataset, and trains a small GPT for a few minutes data-parallel on every core (one MPI rank per core,
# one BLAS thread per rank) through jobs/train.sbatch's local mode, printing validation loss and a sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/install-deps.sh
cmake --preset default
cmake --build --preset default --target strata -j"$(env -u OMP_NUM_THREADS nproc)"
[ -f build/demo/fortunes.h5 ] || bash data/fortunes.sh build/demo/fortunes.h5 build/default/strata
# As many ranks as cores, rounded down to a divisor of the demo's global batch (16).
ranks=1
for r in 2 4 8 16; do [ "$r" -le "$(env -u OMP_NUM_THREADS nproc)" ] && ranks=$r; done
echo "demo: $ranks rank(s), data parallel"
# The Slurm batch script, run without Slurm: it launches the ranks with mpirun (the same script submits with sbatch).
STRATA_RANKS=$ranks STRATA_OUT=build/demo/run exec bash jobs/train.sbatch jobs/configs/demo.toml "$@"
