"""Two-step floating catchment area (2SFCA) accessibility.

Used where facilities have a capacity, e.g. parking spaces: how many spaces
per 1,000 residents are within reach. Distances are metres in a projected CRS
(EPSG:4548 in this project); see :mod:`geo.coverage` for array conventions.

Step 1, per facility j: ``R_j = S_j / sum(P_k for cells k with d_kj <= r_k)``.
Step 2, per cell i: ``A_i = sum(R_j for facilities j with d_ij <= r_i)``.
Both are reported per 1,000 residents (multiplied by 1,000).

Reference: Luo, W. and Wang, F. (2003), "Measures of spatial accessibility to
health care in a GIS environment", Environment and Planning B 30(6).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from geo.coverage import as_points, as_weights, group_sums, pairs_within, plain_key
from geo.errors import GeoError

#: Ratios are reported per this many residents.
PER_RESIDENTS = 1000.0


def two_step_fca(xy: Any, population: Any, fxy: Any, capacity: Any = None,
                 radius: Any = 500.0, *, pairs: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """2SFCA accessibility of each cell, and supply ratio of each facility.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres in a projected CRS.
    population : array (n,)
        Residents per cell.
    fxy : array (m, 2)
        Facilities, metres in the same CRS.
    capacity : array (m,), optional
        Supply of each facility (e.g. parking spaces); 1 each when omitted.
    radius : float or array (n,)
        Catchment radius in metres, for all cells or per cell.
    pairs : (cell, facility) int arrays, optional
        The pairs within reach when measured otherwise (e.g. along the roads,
        :func:`geo.reach.network_pairs`); default: straight line within ``radius``.

    Returns
    -------
    cell_ratio : float array (n,)
        ``A_i``: supply within reach per 1,000 residents; 0 where nothing is
        within reach.
    facility_ratio : float array (m,)
        ``R_j``: supply per 1,000 residents of its catchment; NaN where no
        resident is within reach (such a facility adds nothing to step 2).
    """
    cells = as_points(xy, "xy")
    pop = as_weights(population, len(cells), "population")
    facilities = as_points(fxy, "fxy")
    supply = _capacity(capacity, len(facilities))
    cell, fac = pairs_within(cells, facilities, radius)[:2] if pairs is None else pairs
    facility_ratio = _supply_ratio(cell, fac, pop, supply)
    contribution = np.nan_to_num(facility_ratio, nan=0.0)[fac]
    cell_ratio = np.bincount(cell, weights=contribution, minlength=len(cells))
    return cell_ratio * PER_RESIDENTS, facility_ratio * PER_RESIDENTS


def _capacity(capacity: Any, m: int) -> np.ndarray:
    if capacity is None:
        return np.ones(m)
    return as_weights(capacity, m, "capacity")


def _supply_ratio(cell: np.ndarray, fac: np.ndarray, pop: np.ndarray,
                  supply: np.ndarray) -> np.ndarray:
    """Step 1: supply over the population within each facility's reach."""
    demand = np.bincount(fac, weights=pop[cell], minlength=len(supply))
    ratio = np.full(len(supply), np.nan)
    np.divide(supply, demand, out=ratio, where=demand > 0)
    return ratio


def district_2sfca(cell_ratio: Any, population: Any, groups: Any) -> list[dict[str, Any]]:
    """Population-weighted mean of the 2SFCA ratio per group, plus the total.

    Parameters
    ----------
    cell_ratio : array (n,)
        Per-cell ratio from :func:`two_step_fca` (per 1,000 residents).
    population : array (n,)
        Residents per cell.
    groups : array (n,)
        Group code of each cell (e.g. the district code).

    Returns
    -------
    list of dict
        One row per group in sorted code order, then the total row whose
        ``group`` is ``None``. Keys: ``group``, ``population`` and
        ``ratio_per_1000`` (``None`` when the group has no residents).
    """
    ratio = np.asarray(cell_ratio, dtype=float)
    pop = as_weights(population, len(ratio), "population")
    if np.shape(groups) != pop.shape:
        raise GeoError(f"`groups` has shape {np.shape(groups)} but is expected to be {pop.shape}")
    keys, (total, weighted) = group_sums(groups, pop, pop * ratio)
    rows = [_ratio_row(plain_key(k), t, w) for k, t, w in zip(keys, total, weighted, strict=True)]
    rows.append(_ratio_row(None, pop.sum(), (pop * ratio).sum()))
    return rows


def _ratio_row(group: Any, population: float, weighted: float) -> dict[str, Any]:
    mean = float(weighted) / float(population) if population > 0 else None
    return {"group": group, "population": float(population), "ratio_per_1000": mean}


def ratio_spread(cell_ratio: Any, population: Any, groups: Any) -> dict[Any, dict[str, float | None]]:
    """Per group (and ``None`` for all): how the 2SFCA ratio is spread over the residents.

    Parameters
    ----------
    cell_ratio : array (n,)
        Per-cell ratio from :func:`two_step_fca` (per 1,000 residents).
    population : array (n,)
        Residents per cell.
    groups : array (n,)
        Group code of each cell.

    Returns
    -------
    dict
        ``{group: {"none_in_reach_percent", "q1", "median", "q3"}}``: the
        share of residents (0-100) whose cell has no supply in reach (ratio 0),
        and the population-weighted quartiles of the cell ratio (per 1,000
        residents; each the lowest ratio with at least that share of the
        residents at or below it). ``None`` values when a group has no residents.
    """
    ratio = np.asarray(cell_ratio, dtype=float)
    pop = as_weights(population, len(ratio), "population")
    codes = np.asarray(groups, dtype=object)
    out: dict[Any, dict[str, float | None]] = {None: _spread(ratio, pop)}
    for code in np.unique(codes.astype(str)) if len(codes) else []:
        mine = codes.astype(str) == code
        out[plain_key(code)] = _spread(ratio[mine], pop[mine])
    return out


def _spread(ratio: np.ndarray, pop: np.ndarray) -> dict[str, float | None]:
    total = float(pop.sum())
    if total <= 0:
        return {"none_in_reach_percent": None, "q1": None, "median": None, "q3": None}
    order = np.argsort(ratio, kind="stable")
    share = np.cumsum(pop[order]) / total
    q = [float(ratio[order][min(int(np.searchsorted(share, p - 1e-12)), len(order) - 1)]) for p in (0.25, 0.5, 0.75)]
    return {"none_in_reach_percent": 100.0 * float(pop[ratio <= 0].sum()) / total,
            "q1": q[0], "median": q[1], "q3": q[2]}
