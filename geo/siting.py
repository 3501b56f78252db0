"""Near-optimal site choice: greedy picks improved by interchange and Lagrangian relaxation.

The maximal covering location problem (see :mod:`geo.allocate`) on a
precomputed reach matrix, so that the same search serves straight-line and
road-network reach. Pure numpy/scipy; the reach matrix is candidates x cells
(metres were turned into reach by the caller, EPSG:4548). On the demo city's
districts :func:`max_cover` reaches at least 0.995 of the exact optimum for
every layer (checked against HiGHS in the tests), and it states an upper
bound on the optimum from the relaxation.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from geo.allocate import incremental_greedy
from geo.coverage import as_mask, as_weights


def reach_from_pairs(cell: np.ndarray, candidate: np.ndarray, n_cells: int, n_candidates: int) -> csr_matrix:
    """Sparse (k, n) bool matrix from (cell, candidate) pairs within reach (straight or along the roads)."""
    data = np.ones(len(cell), dtype=bool)
    return csr_matrix((data, (np.asarray(candidate), np.asarray(cell))), shape=(n_candidates, n_cells))


def max_cover(reach: csr_matrix, population: Any, n: int, *, already_covered: Any = None,
              time_budget_s: float = 0.8) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Greedy picks improved by interchange, then Lagrangian relaxation while time is left; the best set wins.

    First the greedy choice, improved by interchange (Teitz-Bart style
    1-swaps: each chosen site in turn is dropped and the candidate that then
    adds most residents takes its place when it adds more than the dropped
    one covered alone, until a pass changes nothing). Then, while
    ``time_budget_s`` lasts, the Lagrangian relaxation of the coverage
    constraints (Galvão and ReVelle, 1996) by subgradient steps: each step's
    ``n`` best-scored sites, improved by interchange, are a candidate answer,
    and the relaxation's value bounds the optimum from above. The best set
    found is listed in greedy order among itself, each with its marginal gain.

    Parameters
    ----------
    reach : csr_matrix (k, n_cells) of bool
        Candidate j reaches cell i (:func:`coverage_matrix` or :func:`reach_from_pairs`).
    population : array (n_cells,)
        Residents per cell (0 where the cell does not count).
    n : int
        Sites to choose.
    already_covered : bool array (n_cells,), optional
        Cells existing facilities cover.
    time_budget_s : float
        Seconds for the improvement (the first greedy always runs).

    Returns
    -------
    picks : list of dict
        As :func:`greedy_max_cover` (``candidate`` is a row of ``reach``;
        ``x``/``y`` are NaN: the caller knows the positions).
    info : dict
        ``greedy_covered`` and ``covered`` (residents newly covered by the
        greedy and by the best set), ``upper_bound`` (no set of ``n`` sites
        newly covers more residents; ``inf`` when not computed), ``steps``
        (subgradient steps run).
    """
    start = time.perf_counter()
    k, n_cells = reach.shape
    pop = as_weights(population, n_cells, "population")
    done = np.zeros(n_cells, bool) if already_covered is None else as_mask(already_covered, n_cells, "already_covered")
    free = np.where(done, 0.0, pop)
    matrix = reach.astype(np.float64).tocsr()
    best = _greedy_set(matrix, free, int(n))
    greedy_gain = _covered_by(reach, best, free)
    _interchange(matrix, free, best, start + time_budget_s)
    best, gain, bound, steps = _lagrangian(matrix, free, int(n), best, start + time_budget_s)
    picks = incremental_greedy(reach[best], pop, np.full((len(best), 2), np.nan), len(best), done.copy())
    for p in picks:
        p["candidate"] = int(best[p["candidate"]])
    return picks, {"greedy_covered": greedy_gain, "covered": gain, "upper_bound": bound, "steps": steps}


#: Subgradient steps between halvings of the step size.
HALVE_EVERY = 20


def _lagrangian(matrix: csr_matrix, free: np.ndarray, n: int, best: list[int],
                deadline: float) -> tuple[list[int], float, float, int]:
    """Subgradient search on the multipliers of ``y_i <= sum_j a_ij x_j``; (best set, its gain, bound, steps)."""
    gain, bound, steps = _covered_by(matrix, best, free), np.inf, 0
    if n < 1 or n >= matrix.shape[0] or gain <= 0:
        return best, gain, (gain if n >= matrix.shape[0] else np.inf), 0
    lam, theta, tried = free * 0.5, 2.0, set()
    while time.perf_counter() < deadline:
        steps += 1
        score = matrix @ lam
        x = np.argpartition(-score, n)[:n]
        bound = min(bound, float(np.maximum(free - lam, 0.0).sum() + score[x].sum()))
        key = tuple(sorted(int(j) for j in x))
        if key not in tried:
            tried.add(key)
            trial = list(key)
            _interchange(matrix, free, trial, deadline)
            if (g := _covered_by(matrix, trial, free)) > gain:
                best, gain = trial, g
        slope = np.asarray(matrix[x].sum(axis=0)).ravel() - ((free - lam) > 0)
        norm = float((slope ** 2).sum())
        if norm == 0 or bound - gain <= 1e-9 * max(gain, 1.0):
            break
        lam = np.clip(lam - theta * (bound - gain) / norm * slope, 0.0, free)
        if steps % HALVE_EVERY == 0:
            theta /= 2
    return best, gain, bound, steps


def _greedy_set(matrix: csr_matrix, free: np.ndarray, n: int) -> list[int]:
    """The greedy choice of up to ``n`` candidates (each the one that newly covers most)."""
    left = free.copy()
    chosen: list[int] = []
    for _ in range(min(n, matrix.shape[0])):
        gains = matrix @ left
        gains[chosen] = -1.0
        pick = int(np.argmax(gains))
        if gains[pick] <= 0:
            break
        chosen.append(pick)
        left[matrix.indices[matrix.indptr[pick]:matrix.indptr[pick + 1]]] = 0.0
    return chosen


def _covered_by(reach: csr_matrix, chosen: list[int], free: np.ndarray) -> float:
    if not chosen:
        return 0.0
    hit = np.asarray(reach[chosen].sum(axis=0)).ravel() > 0
    return float(free[hit].sum())


def _interchange(reach: csr_matrix, free: np.ndarray, chosen: list[int], deadline: float) -> int:
    """1-swaps in place on ``chosen`` until a pass changes nothing or ``deadline`` (perf_counter) passes;
    returns the swaps made."""
    swaps = 0
    if not chosen:
        return 0
    count = np.asarray(reach[chosen].sum(axis=0)).ravel().astype(np.int64)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for pos in range(len(chosen)):
            j = chosen[pos]
            mine = reach.indices[reach.indptr[j]:reach.indptr[j + 1]]
            alone = mine[count[mine] == 1]
            loss = float(free[alone].sum())
            weight = np.where(count == 0, free, 0.0)
            weight[alone] = free[alone]
            gains = reach @ weight
            gains[chosen] = -np.inf
            best = int(np.argmax(gains))
            if gains[best] > loss * (1 + 1e-9) + 1e-9:
                count[mine] -= 1
                count[reach.indices[reach.indptr[best]:reach.indptr[best + 1]]] += 1
                chosen[pos], swaps, improved = best, swaps + 1, True
            if time.perf_counter() >= deadline:
                break
    return swaps


