#!/usr/bin/env bash
# The README's test command (and CI's): installs the dependencies (Debian packages, as root), checks the C++ style
# (clang-format), builds the CUDA preset (compile and link; its device tests skip with the reason when no GPU is present), then
# builds the default preset and runs the whole suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc alone would follow OMP_NUM_THREADS
bash jobs/install-deps.sh

echo "== style: clang-format (.clang-format) on every C++ source"
find src kernels tests perf \( -name '*.cpp' -o -name '*.hpp' \) -print0 | xargs -0 clang-format --dry-run --Werror

if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== cuda preset: compile and link"
  export PATH=/usr/local/cuda/bin:$PATH
  cmake --preset cuda
  # The library, the command and the device tests: what the CUDA paths touch (the other tests are the default
  # preset's).
  cmake --build --preset cuda -j"$jobs" --target strata unit_cuda
  ./build/cuda/tests/unit_cuda
else
  echo "== cuda preset: skipped, no CUDA toolkit at /usr/local/cuda"
fi

# Where threads and MPI meet, the tests run under the sanitizers instead of in the release build: the MPI tests (but
# the two-phase write's, whose byte-by-byte checks take minutes at -O0; they run in release) and the end-to-end runs of
# checkpoints (the asynchronous writer), faults, the guard, the watchdog, TensorBoard, memory, datasets (the prefetcher,
# MPI preprocessing) and every layout.
sanitized='^(mpi_(comm|tensor_parallel|pipeline_schedule|pruning)\.np[0-9]+|e2e\.(checkpoints|faults|guard|watchdog|tensorboard|memory|datasets|layouts))$'

echo "== debug preset (AddressSanitizer + UndefinedBehaviorSanitizer): unit and reference tests, then MPI and end-to-end"
cmake --preset debug
cmake --build --preset debug -j"$jobs"
ctest --preset debug -j"$jobs" --timeout 900 -L "unit|reference"
ctest --preset debug -j"$jobs" --timeout 900 -R "$sanitized"

echo "== default preset: build and test (the rest)"
cmake --preset default
cmake --build --preset default -j"$jobs"
ctest --preset default -j"$jobs" --timeout 900 -E "$sanitized"
