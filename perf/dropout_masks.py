"""Strata's dropout masks in numpy (kernels/dropout.hpp), for the PyTorch twins of tests/reference.

Element e of sample s at a site has counter c = s * per_sample + e; it is kept iff the 16-bit lane c mod 4 of
bits(key, c // 4) reaches t = round(p * 2^16), where bits(key, c) = mix64(key ^ mix64(c)) (SplitMix64's finaliser,
core/rng.hpp) and key is the site's key at that step (the dumps store them). Kept values are scaled by
2^16 / (2^16 - t).
"""
import numpy as np
import torch

_M = np.uint64


def mix64(z):
    z = z + _M(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _M(30))) * _M(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _M(27))) * _M(0x94D049BB133111EB)
    return z ^ (z >> _M(31))


def keep_mask(key, p, shape, first_sample=0):
    """Boolean mask of a tensor [B, ...] whose sample b is global sample first_sample + b (row-major elements)."""
    per_sample = int(np.prod(shape[1:]))
    counters = (np.arange(shape[0], dtype=np.uint64)[:, None] + _M(first_sample)) * _M(per_sample) + \
        np.arange(per_sample, dtype=np.uint64)[None, :]
    counters = counters.reshape(-1)
    bits = mix64(_M(key) ^ mix64(counters >> _M(2)))
    lane = (bits >> (_M(16) * (counters & _M(3)))) & _M(0xFFFF)
    return torch.from_numpy(lane >= _M(threshold(p))).reshape(shape)


def threshold(p):
    """p rounded to a multiple of 2^-16, as the 16-bit threshold (numpy's round: half to even, like nearbyint)."""
    return int(min(max(np.round(p * 65536.0), 0), 65535))


class Masks:
    """The masks of one step: site name -> key; rate(site) -> p. drop(site, x) applies inverted dropout."""

    def __init__(self, keys, rate):
        self.keys = keys
        self.rate = rate

    def drop(self, site, x):
        p = self.rate(site)
        if p <= 0:
            return x
        keep = keep_mask(self.keys[site], p, tuple(x.shape)).to(x.device)
        return x * keep.to(x.dtype) * (65536.0 / (65536 - threshold(p)))
