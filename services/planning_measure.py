"""How far each demand cell is from a layer's facilities, as a planning report measures it.

``by`` (:data:`services.planning_inputs.MEASURES`) picks the measure:

* ``straight``: a straight line in EPSG:4548 metres.
* ``walk`` (the default once a road network is loaded): along the roads,
  each threshold on the network of its own travel mode (the layer record's
  ``threshold.mode`` for urban cells, ``rural_mode`` for rural ones:
  walking and "any mode" on the walking network, driving on the driving one;
  :data:`layers.model.NETWORK_OF_MODE`).
* ``drive``: every threshold along the driving network.

Area facilities (``geometry_kind`` polygon, e.g. parks) are measured to
their boundary (:mod:`geo.reach`). Distances per layer are remembered until
facilities, the grid or the roads change.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy.engine import Connection, Engine

from db import grid as db_grid
from db import roads as db_roads
from geo import network
from geo.planning import cell_radius
from geo.reach import Targets, network_distance, straight_distance
from layers import Layer
from layers.model import NETWORK_OF_MODE
from layers.modes import MODES
from services import planning_inputs as inputs
from services import roads
from services.cache import memo
from services.errors import InvalidRequest
from services.planning_inputs import GRID_FAMILIES, MAX_RADIUS_M, Mask, PlanningQuery

#: Data the distances depend on.
DISTANCE_FAMILIES = ("facility", "grid", "roads")
#: How far along the roads distances are measured, metres: the largest radius a planner may ask for.
NETWORK_LIMIT_M = MAX_RADIUS_M
#: Farthest a cell centre may be from a road and still join the network, metres (beyond: unreached by road).
MAX_ACCESS_M = 2_000.0

_TEXT = {"straight": ("直线距离", "straight-line distance"), "walk": ("沿步行路网", "along the walking network"),
         "drive": ("沿驾车路网", "along the driving network")}


@dataclass(frozen=True)
class LayerCover:
    """One layer against the grid: covered cells, each cell's radius and distance (metres), the sites.

    ``distance`` is exact up to the reach it was measured to (at least each
    cell's radius; ``inf`` beyond it or when unreached).
    """

    covered: Mask
    radius: npt.NDArray[np.float64]
    distance: npt.NDArray[np.float64]
    sites: db_grid.Sites


def network_loaded(engine: Engine) -> bool:
    """Whether a road network has been imported."""
    with engine.connect() as conn:
        return db_roads.latest_import(conn) is not None


def resolve_by(engine: Engine, by: str | None) -> str:
    """The measure a report uses: ``by`` as asked, or walking when a network is loaded, else straight.

    Raises
    ------
    InvalidRequest
        ``by`` along the roads when no road network is loaded.
    """
    if by is None:
        return "walk" if network_loaded(engine) else "straight"
    if by != "straight" and not network_loaded(engine):
        raise InvalidRequest(f"by was {by!r} but no road network is loaded: use by=straight, or import one "
                             "with `flask etl roads FILE`", parameter="by", allowed=["straight"])
    return by


def graph_mode(layer: Layer, urban: bool, by: str) -> str | None:
    """The network a layer's urban or rural threshold is measured on (``None``: straight)."""
    if by == "straight":
        return None
    return "drive" if by == "drive" else NETWORK_OF_MODE[layer.threshold.mode_for(urban)]


def measure(layer: Layer, by: str, lang: str) -> dict[str, Any]:
    """What a layer's figures are measured by, for the report: per cell class the measure and the mode's speed."""
    out: dict[str, Any] = {"by": by, "area_to": "boundary" if layer.geometry_kind == "polygon" else "point"}
    for cls, urban in (("urban", True), ("rural", False)):
        g = graph_mode(layer, urban, by)
        mode = MODES[layer.threshold.mode_for(urban)]
        out[cls] = {"network": g or "straight", "text": _TEXT[g or "straight"][lang == "en"],
                    "threshold_mode": mode.key, "speed_m_per_min": mode.speed_m_per_min}
    return out


def layer_cover(engine: Engine, conn: Connection, grid: db_grid.DemandGrid, layer: Layer, q: PlanningQuery,
                by: str) -> LayerCover:
    """The layer's facilities open on ``q.day`` and how far each cell is from them (metres, by ``by``).

    Distances are remembered per layer, set of open facilities (not per
    day: a day with the same facilities open reuses them) and measure. Along
    the roads they are measured out to :data:`NETWORK_LIMIT_M` whatever the
    radius (a Dijkstra to 20 km costs about what one to 1 km does on the demo
    city), so a new ``radius_m`` only compares them again. Straight distances
    stop at the largest radius asked (beyond it, to an area, the search grows
    with the reach).
    """
    t = layer.threshold
    radius = cell_radius(grid.urban, t.urban_m, t.rural_m, q.radius_m)
    sites = db_grid.layer_sites(conn, layer.key, q.day, capacity_field=layer.capacity_field,
                                area=layer.geometry_kind == "polygon")
    reach = q.radius_m if by == "straight" else None
    open_ids = hashlib.blake2b(sites.id.tobytes(), digest_size=16).hexdigest()
    distance = memo(engine, "planning.distance", (layer.key, open_ids, reach, by),
                    lambda: _distance(engine, grid, layer, sites, radius, by), families=DISTANCE_FAMILIES, conn=conn)
    return LayerCover(np.asarray(distance <= radius, dtype=bool), radius, distance, sites)


def targets(sites: db_grid.Sites) -> Targets:
    """The sites as :class:`geo.reach.Targets` (areas when their polygons were read)."""
    return Targets(sites.xy, None if sites.wkb is None else shapely.from_wkb(sites.wkb))


def _distance(engine: Engine, grid: db_grid.DemandGrid, layer: Layer, sites: db_grid.Sites,
              radius: npt.NDArray[np.float64], by: str) -> npt.NDArray[np.float64]:
    """Metres from every cell to the nearest site: one search per measure the cells' classes use (urban and
    rural cells on the same network are measured together)."""
    dist = np.full(len(grid), np.inf)
    where = targets(sites)
    modes = {urban: graph_mode(layer, urban, by) for urban in (True, False)}
    for g in dict.fromkeys(modes.values()):
        cells = np.isin(grid.urban, [urban for urban, m in modes.items() if m == g])
        if not cells.any():
            continue
        if g is None:
            dist[cells] = straight_distance(grid.xy[cells], where, float(radius[cells].max()))[0]
        else:
            graph, snapped = snapped_cells(engine, grid, g)
            dist[cells] = network_distance(graph, snapped.take(np.flatnonzero(cells)), where, grid.xy[cells],
                                           NETWORK_LIMIT_M)[0]
    return dist


def snapped_cells(engine: Engine, grid: db_grid.DemandGrid, mode: str) -> tuple[network.Graph, network.Snapped]:
    """The graph of ``mode`` and every cell centre joined to it (held until the grid or the roads change)."""
    graph = roads.graph(engine, mode)
    key = (mode, len(grid), float(grid.xy.sum()) if len(grid) else 0.0)
    snapped = memo(engine, "planning.snapped", key,
                   lambda: network.snap(graph, grid.xy, max_access_m=MAX_ACCESS_M),
                   families=(*GRID_FAMILIES, "roads"), held=True)
    return graph, snapped


def hold_inputs(engine: Engine) -> str:
    """Read and hold what every planner view measures on: the demand grid and villages, and with a road
    network its graphs and every cell joined to each (held until the population or the roads change).

    Run once when a server starts, so its first planner view costs what any new view costs, not the
    seconds of reading the grid and joining 70,000 cells to the roads. Returns what is held, in words.
    """
    with inputs.snapshot(engine) as conn:
        grid = inputs.demand_grid(engine, conn)
        inputs.villages(engine, conn)
    held = [f"demand grid of {len(grid):,} cells"]
    if network_loaded(engine):
        for mode in db_roads.NETWORK_MODES:
            graph, _ = snapped_cells(engine, grid, mode)
            held.append(f"{mode} network of {graph.n_vertices:,} junctions with every cell joined to it")
    return "; ".join(held)
