"""A road graph's edge arrays before the graph is built: vertex positions, and roads drawn twice.

Pure: numpy and shapely; no database. Lines are EPSG:4548 metres (``geo.crs.METRIC_EPSG``).

**Coincident roads.** Two edges between the same two vertices along the same line (a road mapped
twice: in the demo, an arterial's bridge and a county road's bridge on one crossing; in OpenStreetMap, a
duplicated way) are one road. Kept apart, a point snapped to one copy could reach a point on the other
only through a vertex at the end, and which copy a point joins is a tie broken arbitrarily; so the first
copy (lowest position) stays, allowing every direction either copy allows, and the others go.
"""
from __future__ import annotations

import numpy as np
import shapely

from geo.errors import GeoError


def positions(ids: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``wanted`` in the ascending ``ids``; :class:`GeoError` naming the first unknown id."""
    pos = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
    bad = ids[pos] != wanted if len(ids) else np.ones(len(wanted), dtype=bool)
    if np.any(bad):
        raise GeoError(f"unknown {what} id {int(wanted[bad][0])}")
    return pos.astype(np.int64)


def coincident(source: np.ndarray, target: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Per edge, the first edge between the same two vertices along the same line (itself when none).

    ``source``/``target`` are vertex positions; a loop (source = target) is never merged, since which way
    round it is drawn cannot be told from its ends.
    """
    n = len(source)
    lo, hi = np.minimum(source, target), np.maximum(source, target)
    order = np.lexsort((np.arange(n), hi, lo))
    starts = np.flatnonzero(np.concatenate([[True], (np.diff(lo[order]) != 0) | (np.diff(hi[order]) != 0), [True]]))
    first = np.arange(n)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        members = [int(e) for e in order[a:b] if source[e] != target[e]]
        for i, e in enumerate(members):
            first[e] = next((r for r in members[:i] if first[r] == r and shapely.equals(lines[r], lines[e])), e)
    return first


def merge_coincident(source: np.ndarray, target: np.ndarray, forward: np.ndarray, backward: np.ndarray,
                     lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges to keep (one of each set of coincident roads) and every edge's directions after merging.

    Returns
    -------
    keep : bool array (n,)
    forward, backward : bool arrays (n,)
        A kept copy may be travelled in every direction any of its copies allows (a copy drawn the other
        way round lends its ``forward`` as ``backward`` and the reverse).
    """
    first = coincident(source, target, lines)
    dup = np.flatnonzero(first != np.arange(len(first)))
    fwd, bwd = np.array(forward, dtype=bool), np.array(backward, dtype=bool)
    rep = first[dup]
    same_way = source[dup] == source[rep]
    np.logical_or.at(fwd, rep, np.where(same_way, forward[dup], backward[dup]))
    np.logical_or.at(bwd, rep, np.where(same_way, backward[dup], forward[dup]))
    keep = np.ones(len(first), dtype=bool)
    keep[dup] = False
    return keep, fwd, bwd
