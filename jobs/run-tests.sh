#!/usr/bin/env bash
# The README's test command (and CI's): installs the dependencies (Debian packages, as root), builds the
# default preset and runs every test, then builds the CUDA preset (compile and link; no GPU here) and
# runs its tests, which skip with a reason when no device is present.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash jobs/install-deps.sh

echo "== default preset: build and test"
cmake --preset default
cmake --build --preset default -j"$jobs"
ctest --preset default -j"$jobs" --timeout 600

if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
  echo "== cuda preset: compile and link"
  export PATH=/usr/local/cuda/bin:$PATH
  cmake --preset cuda
  cmake --build --preset cuda -j"$jobs"
  ctest --preset cuda -j"$jobs" --timeout 600 -R cuda
else
  echo "== cuda preset: skipped, no CUDA toolkit at /usr/local/cuda"
fi
