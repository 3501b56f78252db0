"""Service gaps: clusters of adjacent uncovered cells on the demand lattice.

Cells are the centres of a regular square lattice of side ``cell_size_m``
metres in a projected CRS (EPSG:4548 in this project). Two uncovered cells
belong to one gap when they touch by an edge or a corner (8-neighbourhood):
their centres are at most ``cell_size_m * sqrt(2)`` apart, with 1 % slack for
rounding.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from geo.coverage import as_mask, as_points, as_weights
from geo.errors import GeoError

#: Slack on the diagonal neighbour distance, as a factor.
_NEIGHBOUR_SLACK = 1.01


def gap_clusters(xy: Any, population: Any, uncovered_mask: Any,
                 cell_size_m: float) -> list[dict[str, Any]]:
    """Merge adjacent uncovered cells into gaps, largest population first.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres on a regular lattice, metres in a projected CRS.
    population : array (n,)
        Residents per cell.
    uncovered_mask : bool array (n,)
        True for cells outside every facility's reach.
    cell_size_m : float
        Lattice spacing, metres.

    Returns
    -------
    list of dict
        Per gap: ``cells`` (int array of rows of ``xy``, ascending),
        ``population`` (residents, float) and ``centroid`` ((x, y) metres,
        population-weighted; the plain mean where nobody lives). Sorted by
        population descending, ties by first cell.
    """
    cells = as_points(xy, "xy")
    pop = as_weights(population, len(cells), "population")
    rows = np.flatnonzero(as_mask(uncovered_mask, len(cells), "uncovered_mask"))
    size = _cell_size(cell_size_m)
    labels = _component_labels(cells[rows], size * math.sqrt(2.0) * _NEIGHBOUR_SLACK)
    clusters = [_cluster(members, cells, pop) for members in _split_by_label(rows, labels)]
    clusters.sort(key=lambda c: (-c["population"], int(c["cells"][0])))
    return clusters


def _cell_size(cell_size_m: float) -> float:
    size = float(cell_size_m)
    if not np.isfinite(size) or size <= 0:
        raise GeoError(f"`cell_size_m` was {cell_size_m!r} but is expected to be > 0 metres")
    return size


def _component_labels(points: np.ndarray, reach: float) -> np.ndarray:
    """Connected-component label of each point; edges join points <= reach apart."""
    k = len(points)
    if k == 0:
        return np.empty(0, dtype=np.intp)
    pairs = cKDTree(points).query_pairs(reach, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
                       shape=(k, k))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.intp)


def _split_by_label(rows: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [np.sort(part) for part in np.split(rows[order], bounds)] if len(rows) else []


def _cluster(members: np.ndarray, cells: np.ndarray, pop: np.ndarray) -> dict[str, Any]:
    weights = pop[members]
    total = float(weights.sum())
    points = cells[members]
    centre = (weights @ points) / total if total > 0 else points.mean(axis=0)
    return {"cells": members, "population": total,
            "centroid": (float(centre[0]), float(centre[1]))}


def cluster_polygon(xy: Any, cells: Any, cell_size_m: float) -> shapely.Geometry:
    """The outline of a gap: the union of its cell squares.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, metres in a projected CRS.
    cells : int array
        Rows of ``xy`` in the gap (a cluster's ``cells``).
    cell_size_m : float
        Lattice spacing, metres.

    Returns
    -------
    shapely Polygon or MultiPolygon
        In the same metric CRS as ``xy``. Cells that only touch at a corner
        give a MultiPolygon.
    """
    centres = as_points(xy, "xy")[np.asarray(cells, dtype=np.intp)]
    size = _cell_size(cell_size_m)
    half = size / 2.0
    if len(centres) == 0:
        return shapely.union_all(shapely.box(np.empty(0), np.empty(0), np.empty(0), np.empty(0)))
    lattice = _lattice_squares(centres, size)
    if lattice is not None:
        # Squares from one integer lattice share their edges exactly: a coverage,
        # which dissolves in linear time (25x faster than an overlay union).
        return shapely.coverage_union_all(lattice)
    squares = shapely.box(centres[:, 0] - half, centres[:, 1] - half,
                          centres[:, 0] + half, centres[:, 1] + half)
    # Snap to 1 mm so that shared edges of floating-point squares dissolve.
    return shapely.union_all(squares, grid_size=0.001)


def _lattice_squares(centres: np.ndarray, size: float) -> np.ndarray | None:
    """The cells' squares with corners on one exact lattice, or None when off it by > 1 mm."""
    origin = centres.min(axis=0)
    steps = np.round((centres - origin) / size)
    if np.abs(origin + steps * size - centres).max() > 0.001:
        return None
    lo = origin + (steps - 0.5) * size
    hi = origin + (steps + 0.5) * size
    return np.asarray(shapely.box(lo[:, 0], lo[:, 1], hi[:, 0], hi[:, 1]))
