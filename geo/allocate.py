"""Site suggestion: where should the next facilities go?

The maximal covering location problem (MCLP; Church and ReVelle, 1974): choose
``n`` candidate sites that together bring the most residents within reach.
Distances are metres in a projected CRS (EPSG:4548 in this project); see
:mod:`geo.coverage` for array conventions.

* :func:`greedy_max_cover` picks sites one at a time by marginal gain. It is
  fast enough for the whole city (hundreds of thousands of cells, tens of
  thousands of candidates) and, for coverage, is within ``1 - 1/e`` of the
  optimum in the worst case and usually within a fraction of a percent.
* :func:`geo.siting.max_cover` starts from the greedy picks and improves
  them within a time budget (what the planners' suggestions use).
* :func:`exact_max_cover` solves the integer programme with PuLP/CBC, for
  small instances and for checking the greedy answer.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

from geo.coverage import as_mask, as_points, as_radius, as_weights, pairs_within
from geo.errors import GeoError

# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------

def default_candidates(xy: Any, uncovered: Any, max_candidates: int | None = None,
                       *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Candidate sites: the centres of uncovered cells.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres.
    uncovered : bool array (n,)
        Cells outside every facility's reach.
    max_candidates : int, optional
        Keep at most this many, drawn uniformly at random (seeded) so that
        they spread over the whole area.
    seed : int
        Seed of the draw.

    Returns
    -------
    candidates_xy : float array (k, 2)
        Candidate positions, metres.
    cell_index : int array (k,)
        The row of ``xy`` each candidate comes from, ascending.
    """
    cells = as_points(xy, "xy")
    rows = np.flatnonzero(as_mask(uncovered, len(cells), "uncovered"))
    if max_candidates is not None:
        if int(max_candidates) < 1:
            raise GeoError(f"`max_candidates` was {max_candidates!r} but is expected to be >= 1")
        if len(rows) > max_candidates:
            pick = np.random.default_rng(seed).choice(len(rows), int(max_candidates), replace=False)
            rows = rows[np.sort(pick)]
    return cells[rows], rows


def coverage_matrix(xy: Any, candidates_xy: Any, radius: Any) -> csr_matrix:
    """Sparse (k, n) matrix: candidate j reaches cell i (``d_ij <= r_i``).

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres.
    candidates_xy : array (k, 2)
        Candidate sites, metres, same CRS.
    radius : float or array (n,)
        Service radius in metres, for all cells or per cell.

    Returns
    -------
    scipy.sparse.csr_matrix of bool, shape (k, n)
    """
    cells = as_points(xy, "xy")
    candidates = as_points(candidates_xy, "candidates_xy")
    cell, cand, _ = pairs_within(cells, candidates, radius)
    data = np.ones(len(cell), dtype=bool)
    return csr_matrix((data, (cand, cell)), shape=(len(candidates), len(cells)))


def _check_problem(xy: Any, population: Any, candidates_xy: Any, radius: Any, n: int,
                   already_covered: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cells = as_points(xy, "xy")
    pop = as_weights(population, len(cells), "population")
    candidates = as_points(candidates_xy, "candidates_xy")
    as_radius(radius, len(cells))
    if int(n) != n or n < 0:
        raise GeoError(f"`n` was {n!r} but is expected to be a whole number of sites >= 0")
    if already_covered is None:
        done = np.zeros(len(cells), dtype=bool)
    else:
        done = as_mask(already_covered, len(cells), "already_covered")
    return cells, pop, candidates, done


def _row(candidate: int, candidates: np.ndarray, gain: float, covered: float,
         total: float) -> dict[str, Any]:
    return {"candidate": int(candidate),
            "x": float(candidates[candidate, 0]), "y": float(candidates[candidate, 1]),
            "marginal_gain": float(gain),
            "cumulative_covered": float(covered),
            "cumulative_percent": 100.0 * covered / total if total > 0 else None}


# --------------------------------------------------------------------------
# greedy
# --------------------------------------------------------------------------

def greedy_max_cover(xy: Any, population: Any, candidates_xy: Any, radius: Any, n: int,
                     *, already_covered: Any = None) -> list[dict[str, Any]]:
    """Pick up to ``n`` sites, each time the one that newly covers most residents.

    The candidate-to-cell reach is built once as a sparse matrix. After a pick,
    only candidates that reach one of the newly covered cells have their gain
    lowered (through the transposed matrix), so each step costs the cells it
    covers, not the whole problem.

    Parameters
    ----------
    xy : array (n_cells, 2)
        Cell centres, metres in a projected CRS.
    population : array (n_cells,)
        Residents per cell.
    candidates_xy : array (k, 2)
        Candidate sites, metres, same CRS (see :func:`default_candidates`).
    radius : float or array (n_cells,)
        Service radius in metres, for all cells or per cell.
    n : int
        Number of sites to pick.
    already_covered : bool array (n_cells,), optional
        Cells that existing facilities already cover: they add no gain but
        count in the cumulative figures.

    Returns
    -------
    list of dict
        One row per pick, in order: ``candidate`` (row of ``candidates_xy``),
        ``x``, ``y`` (metres), ``marginal_gain`` (residents newly covered),
        ``cumulative_covered`` (residents covered, including
        ``already_covered``) and ``cumulative_percent`` (0-100 of all
        residents). Stops early when no candidate adds anyone; ties go to the
        lowest candidate index.
    """
    cells, pop, candidates, done = _check_problem(xy, population, candidates_xy, radius, n,
                                                  already_covered)
    reach = coverage_matrix(cells, candidates, radius)
    return incremental_greedy(reach, pop, candidates, int(n), done.copy())


def incremental_greedy(reach: csr_matrix, pop: np.ndarray, candidates: np.ndarray, n: int,
                 done: np.ndarray) -> list[dict[str, Any]]:
    reached_by = reach.T.tocsr()  # cell -> candidates reaching it
    gain = reach @ np.where(done, 0.0, pop)
    covered, total = float(pop[done].sum()), float(pop.sum())
    picks: list[dict[str, Any]] = []
    for _ in range(min(n, len(candidates))):
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        new = _newly_covered(reach, best, done)
        if pop[new].sum() <= 0:  # float drift left a zero gain looking positive
            break
        done[new] = True
        covered += float(pop[new].sum())
        picks.append(_row(best, candidates, pop[new].sum(), covered, total))
        _lower_gains(gain, reached_by, new, pop)
    return picks


def _newly_covered(reach: csr_matrix, candidate: int, done: np.ndarray) -> np.ndarray:
    cells = np.asarray(reach.indices[reach.indptr[candidate]:reach.indptr[candidate + 1]])
    return np.asarray(cells[~done[cells]])


def _lower_gains(gain: np.ndarray, reached_by: csr_matrix, new: np.ndarray,
                 pop: np.ndarray) -> None:
    """Subtract each newly covered cell's residents from every candidate reaching it."""
    sub = reached_by[new]
    owners = sub.indices
    weights = np.repeat(pop[new], np.diff(sub.indptr))
    gain -= np.bincount(owners, weights=weights, minlength=len(gain))


# --------------------------------------------------------------------------
# exact (integer programme)
# --------------------------------------------------------------------------

def exact_max_cover(xy: Any, population: Any, candidates_xy: Any, radius: Any, n: int,
                    *, time_limit: float = 60.0, already_covered: Any = None) -> dict[str, Any]:
    """Solve the maximal covering location problem exactly with PuLP/CBC.

    maximise ``sum_i w_i y_i`` subject to ``y_i <= sum_{j reaching i} x_j``,
    ``sum_j x_j = n``, ``x_j`` binary, ``0 <= y_i <= 1``. Cells already
    covered or that no candidate reaches are left out of the programme.

    Parameters
    ----------
    xy, population, candidates_xy, radius, already_covered
        As for :func:`greedy_max_cover`.
    n : int
        Number of sites; at most the number of candidates.
    time_limit : float
        Seconds CBC may run; the best solution found by then is returned.

    Returns
    -------
    dict
        ``candidates`` (sorted list of rows of ``candidates_xy``),
        ``covered_population`` (residents, including ``already_covered``),
        ``percent`` (0-100), ``optimal`` (bool: proven optimal within the time
        limit) and ``status`` (PuLP's status text).

    Raises
    ------
    GeoError
        When PuLP or its CBC solver is not available, or ``n`` exceeds the
        number of candidates.
    """
    cells, pop, candidates, done = _check_problem(xy, population, candidates_xy, radius, n,
                                                  already_covered)
    if n > len(candidates):
        raise GeoError(f"`n` was {n} but only {len(candidates)} candidates were given")
    pulp, solver = _cbc_solver(time_limit)
    reach = coverage_matrix(cells, candidates, radius)
    chosen, status, optimal = _solve_mclp(pulp, solver, reach, np.where(done, 0.0, pop), int(n))
    covered = done | np.asarray(reach[chosen].sum(axis=0)).ravel().astype(bool)
    total = float(pop.sum())
    return {"candidates": chosen, "covered_population": float(pop[covered].sum()),
            "percent": 100.0 * float(pop[covered].sum()) / total if total > 0 else None,
            "optimal": optimal, "status": status}


def _cbc_solver(time_limit: float) -> tuple[Any, Any]:
    # PuLP is a test and benchmark requirement, not a runtime one: imported
    # only when the exact solver is asked for.
    try:
        import pulp
    except ImportError as exc:  # pragma: no cover - pulp is pinned with the test requirements
        raise GeoError(f"exact site selection needs PuLP, which could not be imported: {exc}") from None
    solver = pulp.COIN_CMD(msg=False, timeLimit=float(time_limit))
    if not solver.available():
        # PuLP's own copy of CBC: deprecated for PuLP 4, still the only one
        # shipped inside the wheel, so silence the notice.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=float(time_limit))
    if not solver.available():
        raise GeoError("exact site selection needs PuLP's CBC solver, which is not available; "
                       f"available solvers: {pulp.listSolvers(onlyAvailable=True)}")
    return pulp, solver


def _solve_mclp(pulp: Any, solver: Any, reach: csr_matrix, weight: np.ndarray,
                n: int) -> tuple[list[int], str, bool]:
    reached_by = reach.T.tocsr()
    demand = np.flatnonzero((weight > 0) & (np.diff(reached_by.indptr) > 0))
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [prob.add_variable(f"x{j}", cat="Binary") for j in range(reach.shape[0])]
    y = {i: prob.add_variable(f"y{i}", lowBound=0, upBound=1) for i in demand}
    prob += pulp.lpSum(float(weight[i]) * y[i] for i in demand)
    prob += pulp.lpSum(x) == n
    for i in demand:
        owners = reached_by.indices[reached_by.indptr[i]:reached_by.indptr[i + 1]]
        prob += y[i] <= pulp.lpSum(x[j] for j in owners)
    prob.solve(solver)
    chosen = sorted(j for j, var in enumerate(x) if (var.value() or 0) > 0.5)
    optimal = prob.status == pulp.LpStatusOptimal and prob.sol_status == pulp.LpSolutionOptimal
    return chosen, pulp.LpStatus[prob.status], optimal
