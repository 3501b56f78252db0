"""Where the demo's roads cross its river and railway: bridges and rail crossings, placed as a real city has them.

A barrier is crossed only where a way says so (``bridge=yes``). The rules, in
EPSG:4548 metres:

* **Arterials** cross wherever they meet a barrier (every road between two
  places has its bridge).
* **Street grids** (seats and towns): every :data:`GRID_CROSSING_EVERY`-th
  street crosses, i.e. a bridge or rail crossing every kilometre in town; the
  other streets stop at the bank.
* **Countryside**: a county-road crossing every :data:`RURAL_CROSSING_M`
  along the barrier inside the city, unless another crossing is within half
  that, joining the nearest road nodes on the two banks (each within
  :data:`RURAL_REACH_M` of the crossing point).

So a resident is never more than a few kilometres from a bridge, and two
points facing each other across the river away from one are still far apart
on foot.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.spatial import cKDTree

#: In street grids, every n-th street crosses a barrier (n × 250 m: one a kilometre).
GRID_CROSSING_EVERY = 4
#: Spacing (metres) of the countryside crossings along a barrier.
RURAL_CROSSING_M = 3000.0
#: Farthest road node (metres) from the crossing point that a countryside crossing joins.
RURAL_REACH_M = 2500.0


@dataclass
class Barrier:
    """A line roads cross only on ``bridge=yes`` ways; ``word`` names the crossing (大桥, 跨线桥), ``at`` holds
    the midpoints (EPSG:4548) of the crossings drawn so far."""

    line: shapely.LineString
    name: str
    word: str
    at: list[tuple[float, float]] = field(default_factory=list)

    def crossed_by(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        return bool(shapely.intersects(self.line, shapely.LineString([a, b])))

    def record(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        self.at.append(((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0))


def barriers_crossed(barriers: list[Barrier], a: tuple[float, float], b: tuple[float, float]) -> list[Barrier]:
    """The barriers the straight piece ``a``–``b`` crosses."""
    return [barrier for barrier in barriers if barrier.crossed_by(a, b)]


def rural_crossings(xy: np.ndarray, barrier: Barrier, others: list[Barrier],
                    city: shapely.Geometry) -> list[tuple[int, int]]:
    """Countryside crossings of ``barrier``: pairs of road-node positions (rows of ``xy``) to join by a bridge.

    One every :data:`RURAL_CROSSING_M` along the barrier inside ``city``,
    skipped where a crossing (drawn or chosen here) is within half that; each
    joins the nearest node on either bank within :data:`RURAL_REACH_M` by a
    piece that crosses ``barrier`` once and no other barrier.
    """
    if not len(xy):
        return []
    tree, line = cKDTree(xy), barrier.line
    placed = [np.asarray(p) for p in barrier.at]
    pairs: list[tuple[int, int]] = []
    for s in np.arange(RURAL_CROSSING_M / 2.0, line.length, RURAL_CROSSING_M):
        here = np.asarray(line.interpolate(s).coords[0])
        if not city.contains(shapely.Point(here)) or any(np.hypot(*(here - p)) < RURAL_CROSSING_M / 2 for p in placed):
            continue
        pair = _banks(xy, tree.query_ball_point(here, RURAL_REACH_M), here, line, s, others)
        if pair is not None:
            pairs.append(pair)
            placed.append(here)
    return pairs


def _banks(xy: np.ndarray, near: list[int], here: np.ndarray, line: shapely.LineString, s: float,
           others: list[Barrier]) -> tuple[int, int] | None:
    """The nearest node on each bank of ``line`` at ``here`` (``s`` metres along it) that a clean piece joins."""
    if not near:
        return None
    ahead = np.asarray(line.interpolate(min(s + 50.0, line.length)).coords[0])
    behind = np.asarray(line.interpolate(max(s - 50.0, 0.0)).coords[0])
    tangent = ahead - behind
    idx = np.asarray(near)
    rel = xy[idx] - here
    side = np.sign(tangent[0] * rel[:, 1] - tangent[1] * rel[:, 0])
    order = np.argsort(np.hypot(rel[:, 0], rel[:, 1]))
    left = [int(idx[i]) for i in order if side[i] > 0]
    right = [int(idx[i]) for i in order if side[i] < 0]
    for a in left[:4]:
        for b in right[:4]:
            piece = shapely.LineString([xy[a], xy[b]])
            hits = shapely.get_num_geometries(shapely.intersection(piece, line))
            if hits == 1 and not any(o.crossed_by(tuple(xy[a]), tuple(xy[b])) for o in others):
                return a, b
    return None
