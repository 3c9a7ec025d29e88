#!/usr/bin/env bash
# Recipe: the demo's text corpus. Builds a byte-level token dataset (docs/dataset-format.md) from the
# fortune cookie files that Debian's `fortunes` package installs (~14k short documents, 2.4 MB).
# Usage: data/fortunes.sh OUTPUT.h5 [STRATA_BINARY]
set -euo pipefail
out=${1:?usage: data/fortunes.sh OUTPUT.h5 [STRATA_BINARY]}
strata=${2:-build/default/strata}
dir=/usr/share/games/fortunes
[ -d "$dir" ] || { echo "data/fortunes.sh: $dir is missing (apt-get install fortunes)" >&2; exit 1; }
# The text files only: skip the random-access indexes (.dat), the UTF-8 duplicates (.u8) and the two
# ASCII-art collections (pictures, not prose).
mapfile -t files < <(find "$dir" -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' ! -name 'art' ! -name 'ascii-art' | sort)
[ "${#files[@]}" -gt 0 ] || { echo "data/fortunes.sh: no fortune files in $dir" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
"$strata" preprocess text "${files[@]}" --output "$out" --doc-separator % --val-fraction 0.05 --seed 1
