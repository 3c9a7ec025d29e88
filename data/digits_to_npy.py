#!/usr/bin/env python3
"""Writes scikit-learn's bundled 8x8 digits (1797 images, values 0..16, 10 classes) as .npy arrays for
`strata preprocess images`: OUT_DIR/x.npy (uint8 [N, 1, 8, 8]) and OUT_DIR/y.npy (int64 [N]).
Usage: digits_to_npy.py OUT_DIR   (Debian: apt-get install python3-sklearn)"""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: digits_to_npy.py OUT_DIR")
    out = argv[1]
    digits = load_digits()
    images = digits.images  # float64 [N, 8, 8], integer values 0..16
    if images.min() < 0 or images.max() > 16 or not np.array_equal(images, np.round(images)):
        sys.exit("digits_to_npy.py: unexpected pixel values (expected integers 0..16)")
    x = np.ascontiguousarray(images.astype(np.uint8)[:, np.newaxis, :, :])  # [N, 1, 8, 8]
    y = digits.target.astype(np.int64)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "y.npy"), y)
    print(f"{out}: x {x.dtype} {list(x.shape)}, y {y.dtype} {list(y.shape)}, {len(np.unique(y))} classes")


if __name__ == "__main__":
    main(sys.argv)
