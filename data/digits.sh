#!/usr/bin/env bash
# Recipe: a small image dataset. Builds an `images` dataset (docs/dataset-format.md) from the 8x8 handwritten
# digits bundled with scikit-learn (Debian's `python3-sklearn`: 1797 images, 1 channel, values 0..16, 10 classes),
# stored as uint8 in 2 shards per split, 20% of the images in val.
# Usage: data/digits.sh OUTPUT_DIR [STRATA_BINARY]
set -euo pipefail
out=${1:?usage: data/digits.sh OUTPUT_DIR [STRATA_BINARY]}
strata=${2:-build/default/strata}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
[ -x "$strata" ] || { echo "data/digits.sh: $strata not found (build first, or pass the strata binary)" >&2; exit 1; }
"$python" -c 'import sklearn' 2>/dev/null ||
  { echo "data/digits.sh: scikit-learn is missing for $python (apt-get install python3-sklearn)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$here/digits_to_npy.py" "$tmp"
mkdir -p "$(dirname "$out")"
"$strata" preprocess images --x "$tmp/x.npy" --y "$tmp/y.npy" -o "$out" --shards 2 --val-fraction 0.2
