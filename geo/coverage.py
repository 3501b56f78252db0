"""Coverage of demand cells by facilities within a service radius.

Pure core on numpy arrays, thin GeoDataFrame adapter at the end (STYLE
convention 1). Every distance is in metres in a projected CRS (the project
uses EPSG:4548); the arrays carry no CRS, so the adapters check it.

Array conventions used across ``geo``:

* ``xy``: demand-cell centres, shape (n, 2), metres.
* ``population``: residents per cell, shape (n,).
* ``radius``: service radius in metres, a scalar or one value per cell,
  shape (n,), because urban and rural cells have different thresholds.
* ``fxy``: facility positions, shape (m, 2), metres.

A cell is covered when some facility lies at a distance ``<= radius`` of its
centre (the boundary counts as covered).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geo.crs import assert_projected_metres
from geo.errors import CRSError, GeoError

#: Facilities processed per block by :func:`pairs_within`, bounding memory.
_PAIR_BLOCK = 20_000


# --------------------------------------------------------------------------
# input checks shared by the analysis modules
# --------------------------------------------------------------------------

def as_points(points: Any, name: str) -> np.ndarray:
    """Return ``points`` as a finite float array of shape (k, 2), in metres.

    Raises
    ------
    GeoError
        When the shape is not (k, 2) or a coordinate is not finite.
    """
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GeoError(f"`{name}` has shape {arr.shape} but is expected to be (k, 2) x/y metres")
    if not np.isfinite(arr).all():
        raise GeoError(f"`{name}` holds {int((~np.isfinite(arr)).any(axis=1).sum())} "
                       "points with NaN or infinite coordinates; all must be finite")
    return arr


def as_weights(values: Any, n: int, name: str) -> np.ndarray:
    """Return ``values`` as a finite, non-negative float array of shape (n,).

    Raises
    ------
    GeoError
        When the length differs from ``n`` or a value is negative or not finite.
    """
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise GeoError(f"`{name}` has shape {arr.shape} but is expected to be ({n},)")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise GeoError(f"`{name}` must be finite and >= 0; found "
                       f"{int((~np.isfinite(arr) | (arr < 0)).sum())} bad values")
    return arr


def as_radius(radius: Any, n: int) -> np.ndarray | float:
    """Return ``radius`` (metres) as a float or a float array of shape (n,).

    Raises
    ------
    GeoError
        When the radius is negative, not finite, or has the wrong length.
    """
    arr = np.asarray(radius, dtype=float)
    if arr.ndim == 0:
        value = float(arr)
        if not np.isfinite(value) or value < 0:
            raise GeoError(f"`radius` was {value!r} but is expected to be a finite distance >= 0 metres")
        return value
    if arr.shape != (n,):
        raise GeoError(f"`radius` has shape {arr.shape} but is expected to be a scalar or ({n},)")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise GeoError("`radius` must be finite and >= 0 metres in every cell")
    return arr


def as_mask(mask: Any, n: int, name: str) -> np.ndarray:
    """Return ``mask`` as a bool array of shape (n,)."""
    arr = np.asarray(mask)
    if arr.shape != (n,):
        raise GeoError(f"`{name}` has shape {arr.shape} but is expected to be ({n},)")
    if arr.dtype != bool:
        raise GeoError(f"`{name}` has dtype {arr.dtype} but is expected to be bool")
    return arr


def _max_radius(radius: np.ndarray | float) -> float:
    return float(np.max(radius)) if np.ndim(radius) else float(radius)


# --------------------------------------------------------------------------
# nearest facility and coverage
# --------------------------------------------------------------------------

def nearest_distance(xy: Any, fxy: Any) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each cell to its nearest facility, and that facility.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres in a projected CRS.
    fxy : array (m, 2)
        Facilities, metres in the same CRS.

    Returns
    -------
    dist : float array (n,)
        Metres to the nearest facility; ``inf`` when there are no facilities.
    index : int array (n,)
        Row of ``fxy`` of the nearest facility; ``-1`` when there are none.
    """
    cells = as_points(xy, "xy")
    facilities = as_points(fxy, "fxy")
    if len(facilities) == 0:
        return np.full(len(cells), np.inf), np.full(len(cells), -1, dtype=np.intp)
    if len(cells) == 0:
        return np.empty(0), np.empty(0, dtype=np.intp)
    dist, index = cKDTree(facilities).query(cells, k=1, workers=-1)
    return dist, index.astype(np.intp)


def covered_mask(xy: Any, fxy: Any, radius: Any) -> np.ndarray:
    """Cells within ``radius`` metres (inclusive) of at least one facility.

    One k-d tree on the facilities, one nearest-neighbour query of all cells,
    bounded by the largest radius so that far cells stop early.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres in a projected CRS.
    fxy : array (m, 2)
        Facilities, metres in the same CRS.
    radius : float or array (n,)
        Service radius in metres, one per cell or one for all.

    Returns
    -------
    bool array (n,)
    """
    cells = as_points(xy, "xy")
    facilities = as_points(fxy, "fxy")
    reach = as_radius(radius, len(cells))
    if len(facilities) == 0 or len(cells) == 0:
        return np.zeros(len(cells), dtype=bool)
    # The bound is strict in scipy: step just past it so `d == radius` counts.
    bound = np.nextafter(_max_radius(reach), np.inf)
    dist, _ = cKDTree(facilities).query(cells, k=1, distance_upper_bound=bound, workers=-1)
    return np.asarray(dist <= reach, dtype=bool)


def pairs_within(xy: Any, fxy: Any, radius: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (cell, facility) pair with distance ``<= radius`` of the cell.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres.
    fxy : array (m, 2)
        Facilities or candidate sites, metres, same CRS.
    radius : float or array (n,)
        Service radius in metres, per cell or for all.

    Returns
    -------
    cell, facility : int32 arrays (p,)
        Row indices into ``xy`` and ``fxy`` of each pair within reach.
    dist : float array (p,)
        Their distance, metres.
    """
    cells = as_points(xy, "xy")
    facilities = as_points(fxy, "fxy")
    reach = as_radius(radius, len(cells))
    empty = (np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0))
    if len(cells) == 0 or len(facilities) == 0:
        return empty
    cell_tree = cKDTree(cells)
    max_r = _max_radius(reach)
    parts = [_pairs_block(cell_tree, facilities[s:s + _PAIR_BLOCK], s, reach, max_r)
             for s in range(0, len(facilities), _PAIR_BLOCK)]
    cell, facility, dist = (np.concatenate(p) for p in zip(*parts, strict=True))
    return cell, facility, dist


def _pairs_block(cell_tree: cKDTree, block: np.ndarray, offset: int,
                 reach: np.ndarray | float, max_r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    found = cKDTree(block).sparse_distance_matrix(cell_tree, max_r, output_type="ndarray")
    fac, cell, dist = found["i"], found["j"], found["v"]
    if np.ndim(reach):
        keep = dist <= np.asarray(reach)[cell]
        fac, cell, dist = fac[keep], cell[keep], dist[keep]
    return cell.astype(np.int32), (fac + offset).astype(np.int32), dist


def composite_mask(masks: Mapping[str, Any],
                   applies: Mapping[str, Any] | None = None) -> np.ndarray:
    """The "15-minute life circle": cells covered by every layer that applies.

    Parameters
    ----------
    masks : dict of str to bool array (n,)
        Per layer, whether each cell is covered.
    applies : dict of str to bool array (n,), optional
        Per layer, whether the layer is expected in each cell (e.g. village
        clinics only in rural cells). A layer missing here applies everywhere.

    Returns
    -------
    bool array (n,)
        True where, for every layer, the cell is covered or the layer does not
        apply.
    """
    if not masks:
        raise GeoError("`masks` is empty; at least one layer is needed")
    applies = dict(applies or {})
    unknown = sorted(set(applies) - set(masks))
    if unknown:
        raise GeoError(f"`applies` names layers {unknown} but is expected to use keys of "
                       f"`masks`: {sorted(masks)}")
    n = len(np.asarray(next(iter(masks.values()))))
    result = np.ones(n, dtype=bool)
    for key, mask in masks.items():
        covered = as_mask(mask, n, f"masks[{key!r}]")
        if key in applies:
            covered = covered | ~as_mask(applies[key], n, f"applies[{key!r}]")
        result &= covered
    return result


# --------------------------------------------------------------------------
# summaries per district
# --------------------------------------------------------------------------

def group_sums(groups: Any, *weights: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sum each weight array per group.

    Returns
    -------
    keys : array (g,)
        The sorted distinct group codes.
    sums : list of float arrays (g,)
        One per weight array, aligned with ``keys``.
    """
    codes = np.asarray(groups)
    keys, inverse = np.unique(codes, return_inverse=True)
    sums = [np.bincount(inverse.ravel(), weights=w, minlength=len(keys)) for w in weights]
    return keys, sums


def _percent(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None


def plain_key(key: Any) -> Any:
    """A numpy scalar group code as a plain Python value (JSON-friendly)."""
    return key.item() if isinstance(key, np.generic) else key


def coverage_summary(population: Any, covered: Any, groups: Any) -> list[dict[str, Any]]:
    """Population and covered population per group (district), plus the total.

    Parameters
    ----------
    population : array (n,)
        Residents per cell.
    covered : bool array (n,)
        Whether each cell is covered.
    groups : array (n,)
        Group code of each cell (e.g. the district code).

    Returns
    -------
    list of dict
        One row per group in sorted code order, then the total row whose
        ``group`` is ``None``. Keys: ``group``, ``population``,
        ``covered_population`` (residents) and ``percent`` (0-100, unrounded;
        ``None`` when the group has no residents).
    """
    pop = np.asarray(population, dtype=float)
    mask = as_mask(covered, len(pop), "covered")
    if np.shape(groups) != pop.shape:
        raise GeoError(f"`groups` has shape {np.shape(groups)} but is expected to be {pop.shape}")
    keys, (total, hit) = group_sums(groups, pop, np.where(mask, pop, 0.0))
    rows = [_summary_row(plain_key(k), t, c) for k, t, c in zip(keys, total, hit, strict=True)]
    rows.append(_summary_row(None, pop.sum(), pop[mask].sum()))
    return rows


def _summary_row(group: Any, population: float, covered: float) -> dict[str, Any]:
    return {"group": group, "population": float(population),
            "covered_population": float(covered),
            "percent": _percent(float(covered), float(population))}


# --------------------------------------------------------------------------
# GeoDataFrame adapter
# --------------------------------------------------------------------------

def check_same_metric_crs(left: Any, right: Any, left_name: str = "cells", right_name: str = "facilities") -> None:
    """Raise unless two GeoDataFrames share one projected CRS in metres.

    Raises
    ------
    CRSError
        When the two CRSs differ (both are named).
    UnitsError
        When the shared CRS is missing or not in metres.
    """
    if left.crs != right.crs:
        raise CRSError(
            f"{left_name} are in {_crs_name(left.crs)} but {right_name} are in "
            f"{_crs_name(right.crs)}; reproject both to one metric CRS such as EPSG:4548")
    assert_projected_metres(left.crs)


def _crs_name(crs: Any) -> str:
    return "no CRS" if crs is None else crs.to_string()


def representative_xy(gdf: Any) -> np.ndarray:
    """(k, 2) coordinates of a point inside each geometry (points stay put).

    Raises
    ------
    GeoError
        When a geometry is missing or empty.
    """
    geoms = gdf.geometry
    bad = geoms.isna() | geoms.is_empty
    if bad.any():
        raise GeoError(f"{int(bad.sum())} geometries are missing or empty; "
                       f"first at index {geoms.index[bad.to_numpy()][0]!r}")
    points = geoms.representative_point()
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()])


def coverage_from_geodataframes(cells_gdf: Any, facilities_gdf: Any, radius_col_or_value: str | float) -> pd.Series:
    """Adapter: :func:`covered_mask` for GeoDataFrames.

    Parameters
    ----------
    cells_gdf : GeoDataFrame
        Demand cells (polygons or points); a point inside each polygon is used.
    facilities_gdf : GeoDataFrame
        Facilities, in the same projected CRS, metres.
    radius_col_or_value : str or float
        A column of ``cells_gdf`` holding the radius per cell in metres, or
        one radius in metres for all cells.

    Returns
    -------
    pandas.Series of bool
        ``covered``, indexed like ``cells_gdf``.
    """
    check_same_metric_crs(cells_gdf, facilities_gdf)
    radius = _radius_from(cells_gdf, radius_col_or_value)
    mask = covered_mask(representative_xy(cells_gdf), representative_xy(facilities_gdf), radius)
    return pd.Series(mask, index=cells_gdf.index, name="covered")


def _radius_from(cells_gdf: Any, radius_col_or_value: str | float) -> np.ndarray | float:
    if isinstance(radius_col_or_value, str):
        if radius_col_or_value not in cells_gdf.columns:
            raise GeoError(f"radius column was {radius_col_or_value!r} but is expected to be one "
                           f"of {list(cells_gdf.columns.drop(cells_gdf.geometry.name))}")
        return np.asarray(cells_gdf[radius_col_or_value].to_numpy(dtype=float))
    return radius_col_or_value
