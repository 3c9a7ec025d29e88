#!/usr/bin/env bash
# The README's demo: installs the dependencies (Debian packages, as root), builds, builds the fortunes
# dataset, trains a small GPT for a few minutes and prints validation loss and a generated sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/install-deps.sh
cmake --preset default
cmake --build --preset default --target strata -j"$(nproc)"
[ -f build/demo/fortunes.h5 ] || bash data/fortunes.sh build/demo/fortunes.h5 build/default/strata
./build/default/strata train --config jobs/configs/demo.toml "$@"
