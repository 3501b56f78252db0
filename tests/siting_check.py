"""An independent upper bound on a maximal covering optimum, for the tests and the planning benchmark.

Textbook Lagrangian relaxation (Galvão & ReVelle): relax each cover constraint
y_i <= sum_j a_ij x_j with a multiplier 0 <= l_i <= w_i; for any such l the
relaxed problem's optimum, sum_i max(0, w_i - l_i) plus the n largest entries
of A l, is at least the true optimum. Written apart from ``geo.siting``.
"""
from __future__ import annotations

import numpy as np


def lagrangian_bound(weight, reach, n, iterations=3000):
    """An upper bound on the MCLP optimum: relax y_i <= sum_j a_ij x_j with multipliers 0 <= l_i <= w_i, so
    every l gives sum_i max(0, w_i - l_i) + (the n largest of A l); the least found by subgradient steps."""
    lam, best = weight * 0.5, float(np.sum(weight))  # no choice covers more than everyone uncovered
    for it in range(iterations):
        score = reach @ lam
        top = np.argpartition(-score, n)[:n] if len(score) > n else np.arange(len(score))
        best = min(best, np.maximum(0.0, weight - lam).sum() + score[top].sum())
        step = np.asarray(reach[top].sum(axis=0)).ravel() - (weight > lam)
        if not step.any():
            break
        lam = np.clip(lam - 0.025 * (1 - it / iterations) * best / max(1.0, float(step @ step)) * step, 0, weight)
    return best
