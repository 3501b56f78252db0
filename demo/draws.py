"""Seeded random streams and exact integer apportionment (largest remainder).

Every step of the generator draws from its own stream, named by strings
(a layer key, a district code, a purpose), so one step's draws never shift
another's: adding a layer leaves every other layer where it was.
"""
from __future__ import annotations

import zlib

import numpy as np


def rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent generator for ``seed`` and the named step ``keys``."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in keys)])


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers proportional to ``weights`` that sum exactly to ``total``.

    Ties in the remainders go to the lower index, so the result is deterministic.
    All zero weights (or ``total`` 0) give all zeros.
    """
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    quota = w * (total / w.sum())
    base: np.ndarray = np.floor(quota).astype(np.int64)
    short = int(total - base.sum())
    order = np.argsort(-(quota - base), kind="stable")
    base[order[:short]] += 1
    return base


def allocate(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Split ``total`` items over groups by weight, each group getting ``minimum`` first if possible."""
    floor = minimum if total >= minimum * len(weights) else 0
    out: np.ndarray = floor + largest_remainder(weights, total - floor * len(weights))
    return out


def normalised(w: np.ndarray) -> np.ndarray:
    """``w`` scaled to sum to 1 (draw probabilities)."""
    out: np.ndarray = w / w.sum()
    return out
