#!/usr/bin/env bash
# Installs every build, test and demo dependency from Debian 12's packages. Idempotent; run as root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2; exit 1
fi
packages=(
  build-essential cmake ninja-build pkg-config
  clang-format                               # the style check (.clang-format)
  openmpi-bin libopenmpi-dev                 # MPI
  libhdf5-openmpi-dev hdf5-tools             # parallel HDF5
  libtrilinos-kokkos-dev                     # Kokkos 3.4 (Serial backend)
  libopenblas-dev                            # CBLAS for host GEMMs
  libdnnl-dev ocl-icd-opencl-dev             # oneDNN: host bf16 GEMMs (AVX512-BF16); its CMake config needs OpenCL
  libgtest-dev                               # GoogleTest
  libtoml11-dev libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libxxhash-dev
  libboost-dev                               # Boost.CRC (CRC-32C of TensorBoard event records)
  python3-torch python3-h5py python3-numpy   # reference tests and perf comparison
  python3-pip                                # installs the tensorboard package (below)
  python3-matplotlib                         # perf plots
  libutf8proc-dev                            # Unicode normalization (text cleaning)
  python3-xxhash python3-sklearn             # h5py-written datasets (checksums), digits image set
  slurm-wlm munge                            # the Slurm tests start a single-node Slurm (tests/e2e/slurm)
  fortunes                                   # demo corpus
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages with daemons (munge, slurmctld, slurmd) must not start system services: the tests run their own private
  # instances. Where no policy says so already, deny service starts for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The tensorboard package (PyPI; Debian 12 has none) for the event-file test (tests/e2e/test_tensorboard.py), which
# reads Strata's event files with TensorBoard's own readers; into the system Python that runs the tests.
if ! /usr/bin/python3 -c 'import tensorboard' 2>/dev/null; then
  echo "install-deps: pip install tensorboard"
  /usr/bin/python3 -m pip install -q --break-system-packages --no-warn-script-location --root-user-action=ignore \
    tensorboard
fi
