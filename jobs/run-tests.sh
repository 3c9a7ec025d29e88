#!/usr/bin/env bash
# The README's test command (and CI's): installs the dependencies (Debian packages, as root), checks the C++ style
# (clang-format), then builds and tests three presets: debug (ASan/UBSan), tsan (ThreadSanitizer) on the tests where
# threads and MPI meet, and a release build (cuda where the toolkit is installed, else default) on the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc alone would follow OMP_NUM_THREADS
bash jobs/install-deps.sh

echo "== style: clang-format (.clang-format) on every C++ source"
find src kernels tests perf \( -name '*.cpp' -o -name '*.hpp' \) -print0 | xargs -0 clang-format --dry-run --Werror

# Where threads and MPI meet, the tests run under the sanitizers instead of in the release build: the MPI tests (but
# the two-phase write's, whose byte-by-byte checks took minutes per rank count under ASan; they run in release) and the end-to-end runs of
# checkpoints (the asynchronous writer), faults, the guard, the watchdog, TensorBoard, memory, datasets (the prefetcher,
# MPI preprocessing) and every layout.
sanitized='^(mpi_(comm|tensor_parallel|pipeline_schedule|pruning)\.np[0-9]+|e2e\.(checkpoints|faults|guard|watchdog|tensorboard|memory|datasets|layouts))$'
# ThreadSanitizer: the prefetcher's tests and the end-to-end runs of the threads beside the training loop (the
# asynchronous checkpoint writer and the stop signal: checkpoint_threads, faults; the watchdog).
thread_sanitized='^(Prefetcher\..*|e2e\.(checkpoint_threads|faults|watchdog))$'

echo "== debug preset (AddressSanitizer + UndefinedBehaviorSanitizer): unit and reference tests, then MPI and end-to-end"
cmake --preset debug
cmake --build --preset debug -j"$jobs"
ctest --preset debug -j"$jobs" --timeout 900 -L "unit|reference"
ctest --preset debug -j"$jobs" --timeout 900 -R "$sanitized"

echo "== tsan preset (ThreadSanitizer): the prefetcher, the asynchronous checkpoint writer, the watchdog"
cmake --preset tsan
cmake --build --preset tsan -j"$jobs" --target strata unit_data
ctest --preset tsan -j"$jobs" --timeout 900 -R "$thread_sanitized"

# The release build runs the rest. Where the CUDA toolkit is installed it is the cuda preset: the same host code
# with the cuBLAS/NCCL paths compiled and linked as well (Debian's Kokkos has no GPU backend, so nothing reaches them
# and the host runs exactly as in the default preset; the device tests skip with the reason), which saves a third
# build.
release=default
if [ -x /usr/local/cuda/bin/nvcc ]; then
  release=cuda
  export PATH=/usr/local/cuda/bin:$PATH
fi
echo "== $release preset: build and test (the rest)"
cmake --preset "$release"
cmake --build --preset "$release" -j"$jobs"
ctest --preset "$release" -j"$jobs" --timeout 900 -E "$sanitized"
