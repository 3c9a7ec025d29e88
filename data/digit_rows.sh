#!/usr/bin/env bash
# Recipe: a small sequence dataset. Builds a `sequences` dataset (docs/dataset-format.md) from scikit-learn's 8x8
# digits (Debian's `python3-sklearn`), each image read row by row: 8 steps of 8 features in [0, 1], one label per
# sequence (10 classes), 2 shards per split, 20% of the sequences in val (the same split as data/digits.sh).
# Usage: data/digit_rows.sh OUTPUT_DIR [STRATA_BINARY]
set -euo pipefail
out=${1:?usage: data/digit_rows.sh OUTPUT_DIR [STRATA_BINARY]}
strata=${2:-build/default/strata}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
[ -x "$strata" ] || { echo "data/digit_rows.sh: $strata not found (build first, or pass the strata binary)" >&2; exit 1; }
"$python" -c 'import sklearn' 2>/dev/null ||
  { echo "data/digit_rows.sh: scikit-learn is missing for $python (apt-get install python3-sklearn)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$here/digits_to_npy.py" "$tmp" --rows
mkdir -p "$(dirname "$out")"
"$strata" preprocess sequences --x "$tmp/x.npy" --y "$tmp/y.npy" -o "$out" --shards 2 --val-fraction 0.2
