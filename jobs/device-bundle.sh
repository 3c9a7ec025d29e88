#!/usr/bin/env bash
# Builds Strata here for an NVIDIA H100/H200 (sm_90) against a Kokkos CUDA installation and gathers what the GPU
# machine lacks (Open MPI with mpirun, HDF5, OpenBLAS and the other shared libraries the binaries load, h5py for the
# reference checker) into one folder, packed as a single archive under the device tool's carry limit.
#
#   jobs/device-bundle.sh --kokkos PREFIX [--build DIR] [--out DIR]
#
# PREFIX: a Kokkos 4 install built with Kokkos_ENABLE_CUDA and Kokkos_ARCH_HOPPER90 (its bin/nvcc_wrapper is the
# compiler; docs/building.md). --build (default build/device) holds the CMake build, --out (default
# build/device-carry, ignored by git) receives bundle.tar.xz and manifest.txt; jobs/device-check.sh unpacks it
# there. Needs nvcc (the CUDA toolkit), pip (to fetch the h5py wheel) and the Debian packages of install-deps.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
kokkos="" build="$here/build/device" out="$here/build/device-carry"
while [ $# -gt 0 ]; do
  case "$1" in
    --kokkos) kokkos=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "device-bundle.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$kokkos" ] || { echo "device-bundle.sh: --kokkos PREFIX is required (a Kokkos CUDA install)" >&2; exit 2; }
[ -x "$kokkos/bin/nvcc_wrapper" ] || { echo "device-bundle.sh: $kokkos/bin/nvcc_wrapper not found: not a Kokkos CUDA install" >&2; exit 2; }
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
command -v nvcc >/dev/null || { echo "device-bundle.sh: nvcc not found (CUDA toolkit)" >&2; exit 2; }

# ---- 1. Build: the binaries the check runs (host code for x86-64-v3, the default CPU target).
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos" \
  -DCMAKE_CXX_COMPILER="$kokkos/bin/nvcc_wrapper" -DSTRATA_ENABLE_CUDA=ON >"$build.configure.log" 2>&1 ||
  { tail -30 "$build.configure.log"; echo "device-bundle.sh: configure failed ($build.configure.log)" >&2; exit 1; }
targets=(strata reference_dump)
for t in $(ninja -C "$build" -t targets all | sed -n 's/^\(unit_[a-z_]*\): phony$/\1/p'); do targets+=("$t"); done
cmake --build "$build" -j "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" --target "${targets[@]}"

# ---- 2. Stage: binaries, their libraries, Open MPI in its /usr layout (relocated with OPAL_PREFIX), h5py.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/ompi" "$stage/python"
for t in "${targets[@]}"; do
  f=$(find "$build" -maxdepth 3 -type f -name "$t" -perm -u+x | head -1)
  [ -n "$f" ] || { echo "device-bundle.sh: built target $t not found under $build" >&2; exit 1; }
  strip -o "$stage/bin/$t" "$f"
done
# Open MPI: launcher, daemon, plugins and help texts at the paths its /usr prefix implies.
ompi_pkglib=$(ompi_info --path pkglibdir --parsable | sed 's/.*://')
ompi_libdir=$(ompi_info --path libdir --parsable | sed 's/.*://')
mkdir -p "$stage/ompi/bin" "$stage/ompi${ompi_pkglib#/usr}" "$stage/ompi/share"
cp -L "$(command -v orterun)" "$stage/ompi/bin/orterun"
cp -L "$(command -v orted)" "$stage/ompi/bin/orted"
ln -sf orterun "$stage/ompi/bin/mpirun"
cp -L "$ompi_pkglib"/*.so "$stage/ompi${ompi_pkglib#/usr}/"
cp -rL /usr/share/openmpi "$stage/ompi/share/"
# Every shared library the binaries, the launcher and the plugins load, except the driver and CUDA's own (the GPU
# machine has its toolkit; NCCL comes from there or from PyTorch) and the C library's core.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libcuda\.so|libcudart|libcublas|libnccl)'
{ ls "$stage"/bin/*; ls "$stage/ompi/bin/orterun" "$stage/ompi/bin/orted"; ls "$stage/ompi${ompi_pkglib#/usr}"/*.so; } |
  while read -r f; do LD_LIBRARY_PATH="$ompi_libdir" ldd "$f" 2>/dev/null | awk '/=> \//{print $1" "$3}'; done |
  sort -u | while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    cp -Ln "$path" "$stage/lib/$name" 2>/dev/null || true
  done
# h5py for the reference checker (the GPU machine has numpy and PyTorch but no h5py): manylinux wheels carry their
# own HDF5; one per CPython the GPU machine might have, unpacked into python/cpXY (device-check.sh picks its own).
pyvers=""
for v in 310 311 312 313; do
  if pip download --quiet --no-deps --only-binary=:all: --python-version "$v" --platform manylinux_2_17_x86_64 \
      --dest "$stage/wheels/cp$v" h5py >/dev/null 2>&1; then
    mkdir -p "$stage/python/cp$v"
    for w in "$stage/wheels/cp$v"/*.whl; do (cd "$stage/python/cp$v" && python3 -m zipfile -e "$w" .); done
    pyvers="$pyvers cp$v"
  fi
done
rm -rf "$stage/wheels"
[ -n "$pyvers" ] || echo "device-bundle.sh: warning: no h5py wheel fetched; the reference check will report it missing" >&2
{
  echo "built $(date -u +%FT%TZ) on $(hostname) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo "strata $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet 2>/dev/null || echo ' (modified)')"
  echo "kokkos $kokkos; nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'); h5py wheels for$pyvers"
  echo "targets ${targets[*]}"
} >"$stage/manifest.txt"

# ---- 3. Pack under the carry limit (64 MiB for everything carried).
mkdir -p "$out"
tar -C "$stage" -cJf "$out/bundle.tar.xz" .
cp "$stage/manifest.txt" "$out/manifest.txt"
size=$(stat -c %s "$out/bundle.tar.xz")
echo "device-bundle.sh: $out/bundle.tar.xz $((size >> 20)) MiB ($(du -sm "$stage" | cut -f1) MiB unpacked)"
[ "$size" -lt $((60 << 20)) ] || { echo "device-bundle.sh: the bundle exceeds 60 MiB (the carry limit is 64 MiB)" >&2; exit 1; }
