#!/usr/bin/env python3
"""Writes scikit-learn's bundled 8x8 digits (1797 images, values 0..16, 10 classes) as .npy arrays:
OUT_DIR/x.npy and OUT_DIR/y.npy (int64 [N]). x is uint8 [N, 1, 8, 8] for `strata preprocess images`, or with
--rows float32 [N, 8, 8] in [0, 1] for `strata preprocess sequences`: each image read row by row, as 8 steps of
8 features.
Usage: digits_to_npy.py OUT_DIR [--rows]   (Debian: apt-get install python3-sklearn)"""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits


def main(argv):
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--rows"):
        sys.exit("usage: digits_to_npy.py OUT_DIR [--rows]")
    out = argv[1]
    rows = len(argv) == 3
    digits = load_digits()
    images = digits.images  # float64 [N, 8, 8], integer values 0..16
    if images.min() < 0 or images.max() > 16 or not np.array_equal(images, np.round(images)):
        sys.exit("digits_to_npy.py: unexpected pixel values (expected integers 0..16)")
    if rows:
        x = np.ascontiguousarray(images.astype(np.float32) / 16.0)  # [N, T = 8 rows, F = 8 pixels]
    else:
        x = np.ascontiguousarray(images.astype(np.uint8)[:, np.newaxis, :, :])  # [N, 1, 8, 8]
    y = digits.target.astype(np.int64)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "y.npy"), y)
    print(f"{out}: x {x.dtype} {list(x.shape)}, y {y.dtype} {list(y.shape)}, {len(np.unique(y))} classes")


if __name__ == "__main__":
    main(sys.argv)
