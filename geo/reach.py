"""How far each demand cell is from a layer's facilities: in a straight line or along the roads, to points or areas.

Pure: numpy, scipy and shapely; no database, no layer registry. Every
position is EPSG:4548 metres (``geo.crs.METRIC_EPSG``); every distance metres.

The rules, stated once:

* **Points** (an office, a clinic) are reached at their position.
* **Areas** (a park's polygon) are reached at their boundary: a cell inside
  the area is at 0 m, a cell outside at its distance to the nearest edge. On
  the road network the boundary is walked to at points every
  :data:`AREA_STEP_M` metres along it (any point of the edge counts as an
  entrance, since the sources give none).
* **Straight** distances are Euclidean in EPSG:4548.
* **Network** distances follow :mod:`geo.network`: cells and facilities join
  the roads at the nearest position on an edge and the straight access legs
  count. Many facilities at once: one multi-source Dijkstra
  (:func:`geo.network.source_field`). A candidate site's reach: one bounded
  Dijkstra per candidate, in blocks (:func:`network_pairs`); there the first
  and last pieces of road (from a candidate to the junctions at the ends of
  its road, and from those of a cell's road to the cell) ignore one-way rules,
  which changes nothing on the walking network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import csr_array
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.coverage import pairs_within
from geo.errors import GeoError
from geo.network import Graph, Snapped, distances_at, snap, source_field

#: Spacing of the points a polygon's boundary is reached at on the network, metres.
AREA_STEP_M = 25.0
#: Candidate start points whose reach one Dijkstra call computes together (bounds memory: block x vertices).
NETWORK_BLOCK = 96


@dataclass(frozen=True)
class Targets:
    """Facilities as the distance functions take them (EPSG:4548 metres).

    ``xy`` (m, 2) their points; ``areas`` their polygons as shapely
    geometries (m,) when they are areas, else ``None``.
    """

    xy: np.ndarray
    areas: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.xy))


def straight_distance(xy: np.ndarray, targets: Targets, limit_m: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Metres from each cell to its nearest facility in a straight line, and which one.

    Parameters
    ----------
    xy : array (n, 2)
        Cell centres, EPSG:4548 metres.
    targets : Targets
        Points, or areas (measured to the boundary; 0 inside).
    limit_m : float
        Farther than this counts as unreached (``inf``, index -1).

    Returns
    -------
    dist : float array (n,), metres
    index : int array (n,), row of ``targets`` (-1 when none within ``limit_m``)
    """
    cells = np.asarray(xy, dtype=float).reshape(-1, 2)
    dist, index = np.full(len(cells), np.inf), np.full(len(cells), -1, dtype=np.int64)
    if len(targets) == 0 or len(cells) == 0:
        return dist, index
    if targets.areas is None:
        bound = np.nextafter(limit_m, np.inf) if np.isfinite(limit_m) else np.inf
        d, i = cKDTree(targets.xy).query(cells, k=1, distance_upper_bound=bound, workers=-1)
        ok = np.isfinite(d)
        dist[ok], index[ok] = d[ok], i[ok]
        return dist, index
    tree = shapely.STRtree(targets.areas)
    found, d = tree.query_nearest(shapely.points(cells), max_distance=None if np.isinf(limit_m) else limit_m,
                                  return_distance=True, all_matches=False)
    dist[found[0]], index[found[0]] = d, found[1]
    return dist, index


def area_sources(areas: np.ndarray, step_m: float = AREA_STEP_M) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_m`` metres along each area's boundary, and the area each belongs to.

    Returns
    -------
    xy : float array (k, 2), EPSG:4548 metres
    owner : int array (k,), row of ``areas``
    """
    rings = shapely.segmentize(shapely.boundary(np.asarray(areas, dtype=object)), step_m)
    xy, owner = shapely.get_coordinates(rings, return_index=True)
    return np.asarray(xy, dtype=float), np.asarray(owner, dtype=np.int64)


def network_distance(graph: Graph, cells: Snapped, targets: Targets, cells_xy: np.ndarray,
                     limit_m: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Metres along the roads from each cell to its nearest facility, and which one.

    One multi-source Dijkstra towards the facilities (one-way rules kept).
    Areas are reached at their boundary points (:func:`area_sources`) and a
    cell inside an area is at 0 m.

    Parameters
    ----------
    graph : Graph
        The travel mode's road graph.
    cells : Snapped
        The cell centres joined to ``graph`` (:func:`geo.network.snap`).
    targets : Targets
    cells_xy : array (n, 2)
        The cell centres (for the inside-an-area test), EPSG:4548 metres.
    limit_m : float
        Farther than this counts as unreached.

    Returns
    -------
    dist : float array (n,), metres (``inf`` when unreached)
    index : int array (n,), row of ``targets`` (-1 when unreached)
    """
    n = len(cells)
    if len(targets) == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    if targets.areas is None:
        src_xy, owner = targets.xy, np.arange(len(targets))
    else:
        src_xy, owner = area_sources(targets.areas)
    field = source_field(graph, snap(graph, src_xy), limit_m=limit_m, towards_sources=True)
    dist, nearest = distances_at(graph, field, cells)
    index = np.where(nearest >= 0, owner[np.maximum(nearest, 0)], -1)
    if targets.areas is not None:
        inside, which = shapely.STRtree(targets.areas).query(shapely.points(cells_xy), predicate="within")
        dist[inside], index[inside] = 0.0, which
    return dist, index


def network_pairs(graph: Graph, starts: Snapped, cells: Snapped, cells_xy: np.ndarray, starts_xy: np.ndarray,
                  radius: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (cell, start) pair whose road distance is within the cell's ``radius``.

    The network is never shorter than the straight line, so only the pairs
    within ``radius`` in a straight line (:func:`geo.coverage.pairs_within`)
    are measured; each start's distances come from one bounded Dijkstra,
    ``NETWORK_BLOCK`` starts per call.

    Parameters
    ----------
    graph : Graph
    starts : Snapped
        Candidate sites (or facilities) joined to the graph.
    cells : Snapped
        Cell centres joined to the graph.
    cells_xy, starts_xy : arrays (n, 2), (k, 2)
        Their positions, EPSG:4548 metres.
    radius : float array (n,)
        Each cell's reach, metres.

    Returns
    -------
    cell, start : int32 arrays (p,)
    dist : float array (p,), metres along the roads, access legs included
    """
    if len(radius) != len(cells):
        raise GeoError(f"`radius` has {len(radius)} values but there are {len(cells)} cells")
    cell, start, _ = pairs_within(cells_xy, starts_xy, radius)
    ok = (cells.edge[cell] >= 0) & (starts.edge[start] >= 0)
    cell, start = cell[ok], start[ok]
    limit = float(np.max(radius)) if len(radius) else 0.0
    backwards = csr_array(graph.arcs.T)  # distances *to* a start: Dijkstra on the reversed arcs
    dist = np.full(len(cell), np.inf)
    order = np.argsort(start, kind="stable")
    bounds = np.searchsorted(start[order], np.arange(0, len(starts) + NETWORK_BLOCK, NETWORK_BLOCK))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        rows = order[lo:hi]
        if len(rows):
            dist[rows] = _block_distances(graph, backwards, starts, cells, start[rows], cell[rows], limit)
    keep = dist <= radius[cell]
    return cell[keep].astype(np.int32), start[keep].astype(np.int32), dist[keep]


def _block_distances(graph: Graph, backwards: csr_array, starts: Snapped, cells: Snapped, s: np.ndarray,
                     c: np.ndarray, limit: float) -> np.ndarray:
    """Road metres from cells ``c`` to starts ``s`` (pairwise), one Dijkstra over the block's start vertices."""
    block = np.unique(s)
    se, sa = starts.edge[block], starts.along_m[block]
    seeds = np.concatenate([graph.source[se], graph.target[se]])
    verts, inverse = np.unique(seeds, return_inverse=True)
    d = dijkstra(backwards, directed=True, indices=verts, limit=limit)
    i = np.searchsorted(block, s)  # the pair's start, as a row of the block
    rs, rt = inverse[i], inverse[len(block) + i]  # its edge's source and target, as rows of `d`
    before, after = sa[i], graph.length_m[se][i] - sa[i]  # metres from those ends to the start
    ce, cb = cells.edge[c], cells.along_m[c]
    csrc, ctgt, crest = graph.source[ce], graph.target[ce], graph.length_m[ce] - cb
    via = np.minimum.reduce([
        d[rs, csrc] + cb + before, d[rs, ctgt] + crest + before,
        d[rt, csrc] + cb + after, d[rt, ctgt] + crest + after,
        np.where(ce == se[i], np.abs(cb - sa[i]), np.inf)])
    return np.asarray(via + cells.access_m[c] + starts.access_m[s], dtype=float)
