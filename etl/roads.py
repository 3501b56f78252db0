"""Road networks from OpenStreetMap files: read → normalise → build topology.

The importer: pyosmium (the ``osmium`` package, Python bindings of libosmium) reads the file and this
module builds the routable network, which ``services/roads.py`` writes with ``COPY`` in one transaction.
Why this and not the field's other tools:

* **osm2pgrouting** (pgRouting's own importer) reads only uncompressed OSM XML, holds the whole file in
  memory, and writes with its own connections and commits: a failure halfway leaves a half-replaced
  network, and a ``.osm.pbf`` extract (the form Geofabrik serves) must first be converted.
* **osm2pgsql with a flex style** reads PBF fast and in one transaction, but splitting ways into edges at
  shared nodes then happens in SQL afterwards (``pgr_nodeNetwork`` or hand-written SQL), and it is one
  more system program to install and keep in step.
* **pyrosm** reads only PBF and returns GeoDataFrames whose topology we would still have to rebuild.
* **pyosmium** reads PBF and XML (also ``.osm.gz``/``.bz2``) with the same call, keeps node locations in
  C++ while streaming, and hands us each way's nodes with ids, so ways are split exactly at nodes shared
  by two or more ways (OSM's junction rule) and the rows go to PostGIS in our own transaction: a bad file
  raises before anything is written.

The rules (one place each):

* :data:`HIGHWAYS`: which ``highway`` values are roads, who may use them, and the driving speed when
  there is no ``maxspeed``. Other values (platforms, construction sites, …) are dropped and counted.
* Access tags narrow or widen that: ``access=no|private`` closes a way to both modes unless ``foot=`` or
  ``motor_vehicle=``/``motorcar=``/``vehicle=`` open it again; ``foot=yes|designated|permissive`` opens
  a cycleway to walkers.
* Driving obeys ``oneway=yes|true|1|-1|reverse``, roundabouts and the implied one-way of motorways;
  walking ignores one-way rules.
* Edge lengths are geodesic metres on WGS-84 (``geo.nearest``), summed over node-to-node segments.
* A way whose nodes are partly outside the file (a clipped extract) keeps its runs of two or more
  located nodes; the missing references are counted.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium
import pandas as pd
import shapely
from osmium.filter import KeyFilter

from etl.errors import ETLError
from geo.nearest import geodesic_distance_m

#: File name endings the importer reads, and the format each is.
SUFFIXES: dict[str, str] = {".osm.pbf": "pbf", ".pbf": "pbf", ".osm": "xml", ".osm.gz": "xml",
                            ".osm.bz2": "xml", ".xml": "xml"}


@dataclass(frozen=True)
class HighwayClass:
    """What a ``highway=`` value allows before access tags: walking, driving, and a driving speed (km/h)."""

    walk: bool
    drive: bool
    speed_kmh: float


#: Routable ``highway`` values. Speeds are the class defaults when a way has no usable ``maxspeed``:
#: China's limits for expressways (GB 5768) and common urban and rural road practice below that.
HIGHWAYS: dict[str, HighwayClass] = {key: HighwayClass(*value) for key, value in {
    "motorway": (False, True, 100.0), "motorway_link": (False, True, 60.0), "trunk": (True, True, 80.0),
    "trunk_link": (True, True, 50.0), "primary": (True, True, 60.0), "primary_link": (True, True, 40.0),
    "secondary": (True, True, 50.0), "secondary_link": (True, True, 40.0), "tertiary": (True, True, 40.0),
    "tertiary_link": (True, True, 30.0), "unclassified": (True, True, 30.0), "residential": (True, True, 30.0),
    "road": (True, True, 30.0), "living_street": (True, True, 10.0), "service": (True, True, 20.0),
    "track": (True, False, 15.0), "pedestrian": (True, False, 5.0), "footway": (True, False, 5.0),
    "path": (True, False, 5.0), "steps": (True, False, 5.0), "corridor": (True, False, 5.0),
    "bridleway": (True, False, 5.0), "cycleway": (False, False, 15.0),
}.items()}

_YES = frozenset({"yes", "designated", "permissive", "destination", "customers", "delivery"})
_NO = frozenset({"no", "private", "agricultural", "forestry", "discouraged"})
_FORWARD = frozenset({"yes", "true", "1"})
_BACKWARD = frozenset({"-1", "reverse"})
_IMPLIED_ONEWAY = frozenset({"motorway", "motorway_link"})
_ROUNDABOUT = frozenset({"roundabout", "circular"})
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph)?\s*$")

#: Tags kept from each way (the rest is not read into Python).
_TAGS = ("highway", "name", "name:zh", "access", "foot", "vehicle", "motor_vehicle", "motorcar", "oneway",
         "junction", "maxspeed", "area", "synthetic")


@dataclass
class RawWays:
    """The highway ways of a file as read: node ids and WGS-84 positions, concatenated.

    Way ``i`` has the nodes ``node_id[start[i]:start[i + 1]]``; a node outside
    the file has NaN longitude and latitude.
    """

    way_id: list[int] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    start: list[int] = field(default_factory=lambda: [0])
    node_id: list[int] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)


@dataclass
class Network:
    """A routable network built from a file, ready to be written.

    Vertices are numbered ``1..n`` (pgRouting wants integers); edges ``1..m``.
    Edge ``j``'s geometry is ``coords[offsets[j - 1]:offsets[j]]`` (WGS-84
    lon/lat, from its source to its target). ``length_m`` is geodesic metres;
    ``forward``/``backward`` say whether driving may go source → target and
    target → source.
    """

    vertex_osm_id: np.ndarray
    vertex_lonlat: np.ndarray
    edge_way_id: np.ndarray
    source: np.ndarray
    target: np.ndarray
    length_m: np.ndarray
    walk: np.ndarray
    drive: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    speed_kmh: np.ndarray
    highway: list[str]
    name: list[str | None]
    synthetic: np.ndarray
    coords: np.ndarray
    offsets: np.ndarray
    ways_read: int = 0
    ways_used: int = 0
    missing_nodes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_edges(self) -> int:
        return int(len(self.source))

    @property
    def n_vertices(self) -> int:
        return int(len(self.vertex_osm_id))


def file_format(path: Path) -> str:
    """``"pbf"`` or ``"xml"`` from the file name; :class:`ETLError` naming the endings allowed otherwise."""
    name = path.name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    raise ETLError(f"{path.name!r} is not an OpenStreetMap file: the name must end in one of "
                   f"{', '.join(sorted(SUFFIXES))}")


def read_ways(path: Path, *, tick: Callable[[int], object] | None = None) -> RawWays:
    """Every way with a ``highway`` tag in an ``.osm.pbf`` or ``.osm`` file, with its nodes' positions.

    ``tick`` is called with the number of ways read since its last call (a
    progress bar). :class:`ETLError` when the file is missing, has an unknown
    ending, or cannot be parsed as OSM (the message says where the reader stopped).
    """
    file_format(path)
    if not path.is_file():
        raise ETLError(f"{path} does not exist or is not a file")
    raw = RawWays()
    since = 0
    processor = osmium.FileProcessor(str(path)).with_locations().with_filter(KeyFilter("highway"))
    try:
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way):
                continue
            _add_way(raw, obj)
            since += 1
            if tick is not None and since >= 1000:
                tick(since)
                since = 0
    except RuntimeError as exc:
        raise ETLError(f"{path.name} could not be read as OpenStreetMap data: {exc}") from None
    if tick is not None and since:
        tick(since)
    return raw


def _add_way(raw: RawWays, way: osmium.osm.Way) -> None:
    raw.way_id.append(int(way.id))
    raw.tags.append({k: way.tags[k] for k in _TAGS if k in way.tags})
    for node in way.nodes:
        located = node.location.valid()
        raw.node_id.append(int(node.ref))
        raw.lon.append(node.location.lon if located else math.nan)
        raw.lat.append(node.location.lat if located else math.nan)
    raw.start.append(len(raw.node_id))


@dataclass(frozen=True)
class WayRules:
    """What one way allows after its tags are read; ``reason`` says why it is dropped (None: kept)."""

    walk: bool
    drive: bool
    forward: bool
    backward: bool
    speed_kmh: float
    reason: str | None = None


def way_rules(tags: dict[str, str]) -> WayRules:
    """Apply :data:`HIGHWAYS`, the access tags, one-way rules and ``maxspeed`` to one way's tags."""
    highway = tags.get("highway", "")
    cls = HIGHWAYS.get(highway)
    if cls is None:
        return WayRules(False, False, False, False, 0.0, f"highway={highway} is not a road for walking or driving")
    if tags.get("area") == "yes":
        return WayRules(False, False, False, False, 0.0, "area=yes: an outline of a square, not a line to route on")
    walk, drive = _access(tags, cls)
    if not (walk or drive):
        return WayRules(False, False, False, False, 0.0, _closed_reason(tags, cls))
    forward, backward = _directions(tags, highway) if drive else (False, False)
    return WayRules(walk, drive, forward, backward, _speed(tags.get("maxspeed"), cls.speed_kmh))


def _access(tags: dict[str, str], cls: HighwayClass) -> tuple[bool, bool]:
    general = tags.get("access")
    walk, drive = cls.walk, cls.drive
    if general in _NO:
        walk = drive = False
    foot = tags.get("foot")
    if foot in _YES:
        walk = True
    elif foot in _NO:
        walk = False
    for key in ("vehicle", "motor_vehicle", "motorcar"):
        value = tags.get(key)
        if value in _NO:
            drive = False
        elif value in _YES and cls.drive:
            drive = True
    return walk, drive


def _closed_reason(tags: dict[str, str], cls: HighwayClass) -> str:
    if tags.get("access") in _NO:
        return f"access={tags['access']}: closed to the public"
    if not (cls.walk or cls.drive):
        return f"highway={tags['highway']} without foot=yes: for neither walking nor driving"
    return "closed to walking and driving by its foot and vehicle tags"


def _directions(tags: dict[str, str], highway: str) -> tuple[bool, bool]:
    oneway = tags.get("oneway", "").lower()
    if oneway in _BACKWARD:
        return False, True
    if oneway in _FORWARD or (oneway != "no" and (tags.get("junction") in _ROUNDABOUT
                                                   or highway in _IMPLIED_ONEWAY)):
        return True, False
    return True, True


def _speed(maxspeed: str | None, default: float) -> float:
    """``maxspeed`` in km/h when it is a number (``"50"``, ``"50 km/h"``, ``"30 mph"``), else ``default``."""
    if not maxspeed:
        return default
    match = _SPEED.match(maxspeed.split(";")[0])
    if not match:
        return default
    value = float(match.group(1)) * (1.609344 if match.group(2) == "mph" else 1.0)
    return value if 5.0 <= value <= 150.0 else default


def build_network(raw: RawWays) -> Network:
    """Normalise the ways and split them into edges at every node two or more ways share.

    Raises
    ------
    ETLError
        When no way of the file is a road for walking or driving.
    """
    dropped: Counter[str] = Counter()
    node_id = np.asarray(raw.node_id, dtype=np.int64)
    lon = np.asarray(raw.lon, dtype=float)
    lat = np.asarray(raw.lat, dtype=float)
    start = np.asarray(raw.start, dtype=np.int64)
    pieces, rules, ways_used = _pieces(raw, node_id, lon, start, dropped)
    missing = int(np.isnan(lon).sum())
    if not pieces:
        reasons = "; ".join(f"{n} × {r}" for r, n in dropped.most_common(5)) or "the file has no highway ways"
        raise ETLError(f"no road for walking or driving in the file ({reasons})")
    return _split(pieces, rules, raw, node_id, lon, lat, ways_used, missing, dropped)


def _pieces(raw: RawWays, node_id: np.ndarray, lon: np.ndarray, start: np.ndarray,
            dropped: Counter[str]) -> tuple[list[tuple[int, np.ndarray]], list[WayRules], int]:
    """Per kept way, its runs of located nodes (positions into the node arrays), consecutive repeats removed."""
    pieces: list[tuple[int, np.ndarray]] = []
    rules: list[WayRules] = []
    used = 0
    for i, tags in enumerate(raw.tags):
        rule = way_rules(tags)
        if rule.reason:
            dropped[rule.reason] += 1
            continue
        pos = np.arange(start[i], start[i + 1])
        runs = _located_runs(pos, node_id, lon)
        if not runs:
            dropped["fewer than two of its nodes are in the file"] += 1
            continue
        used += 1
        for run in runs:
            pieces.append((i, run))
            rules.append(rule)
    return pieces, rules, used


def _located_runs(pos: np.ndarray, node_id: np.ndarray, lon: np.ndarray) -> list[np.ndarray]:
    ok = ~np.isnan(lon[pos])
    runs = []
    for run in np.split(pos, np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1):
        if not ok[run[0] - pos[0]]:
            continue
        ids = node_id[run]
        keep = np.concatenate([[True], ids[1:] != ids[:-1]])
        run = run[keep]
        if len(run) >= 2:
            runs.append(run)
    return runs


def _split(pieces: list[tuple[int, np.ndarray]], rules: list[WayRules], raw: RawWays, node_id: np.ndarray,
           lon: np.ndarray, lat: np.ndarray, ways_used: int, missing: int, dropped: Counter[str]) -> Network:
    pos = np.concatenate([run for _, run in pieces])
    piece = np.repeat(np.arange(len(pieces)), [len(run) for _, run in pieces])
    ids = node_id[pos]
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    first = np.concatenate([[True], piece[1:] != piece[:-1]])
    last = np.concatenate([piece[1:] != piece[:-1], [True]])
    split = (counts[inverse] >= 2) | first | last
    cut = np.flatnonzero(split)
    a, b = cut[:-1], cut[1:]
    same = piece[a] == piece[b]
    a, b = a[same], b[same]
    seg = np.zeros(len(pos))
    seg[1:] = np.where(piece[1:] == piece[:-1],
                       geodesic_distance_m(lon[pos[:-1]], lat[pos[:-1]], lon[pos[1:]], lat[pos[1:]]), 0.0)
    cum = np.cumsum(seg)
    vertex_ids, vertex_of = np.unique(ids[cut], return_inverse=True)
    vpos = np.zeros(len(vertex_ids), dtype=np.int64)
    vpos[vertex_of] = pos[cut]
    vnum = np.zeros(len(pos), dtype=np.int64)
    vnum[cut] = vertex_of + 1
    edge_piece = piece[a]
    edge_rules = [rules[p] for p in edge_piece]
    edge_way = np.asarray([pieces[p][0] for p in edge_piece], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(b - a + 1)])
    take = np.repeat(a - offsets[:-1], b - a + 1) + np.arange(offsets[-1])
    return Network(
        vertex_osm_id=vertex_ids, vertex_lonlat=np.column_stack([lon[vpos], lat[vpos]]),
        edge_way_id=np.asarray(raw.way_id, dtype=np.int64)[edge_way],
        source=vnum[a], target=vnum[b], length_m=cum[b] - cum[a],
        walk=np.array([r.walk for r in edge_rules]), drive=np.array([r.drive for r in edge_rules]),
        forward=np.array([r.forward for r in edge_rules]), backward=np.array([r.backward for r in edge_rules]),
        speed_kmh=np.array([r.speed_kmh for r in edge_rules]),
        highway=[raw.tags[w]["highway"] for w in edge_way],
        name=[raw.tags[w].get("name") or raw.tags[w].get("name:zh") for w in edge_way],
        synthetic=np.array([raw.tags[w].get("synthetic") == "yes" for w in edge_way]),
        coords=np.column_stack([lon[pos[take]], lat[pos[take]]]), offsets=offsets,
        ways_read=len(raw.way_id), ways_used=ways_used, missing_nodes=missing, dropped=dict(dropped))


def read_network(path: Path, *, tick: Callable[[int], object] | None = None) -> Network:
    """:func:`read_ways` then :func:`build_network`: a file to a routable network (nothing written)."""
    return build_network(read_ways(path, tick=tick))


def vertex_frame(network: Network) -> pd.DataFrame:
    """The vertices as ``road_vertex`` rows: ``id``, ``osm_node_id``, ``geom`` (hex EWKB, SRID 4326)."""
    points = shapely.points(network.vertex_lonlat)
    return pd.DataFrame({"id": np.arange(1, network.n_vertices + 1), "osm_node_id": network.vertex_osm_id,
                         "geom": shapely.to_wkb(shapely.set_srid(points, 4326), hex=True, include_srid=True)})


def edge_frame(network: Network) -> pd.DataFrame:
    """The edges as ``road_edge`` rows; driving ``cost``/``reverse_cost`` are metres, -1 where closed."""
    n = network.n_edges
    index = np.repeat(np.arange(n), np.diff(network.offsets))
    lines = shapely.linestrings(network.coords, indices=index)
    length = network.length_m
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "osm_way_id": network.edge_way_id,
        "source": network.source, "target": network.target,
        "highway": network.highway, "name": network.name, "length_m": np.round(length, 3),
        "walk": network.walk, "drive": network.drive,
        "cost": np.where(network.drive & network.forward, np.round(length, 3), -1.0),
        "reverse_cost": np.where(network.drive & network.backward, np.round(length, 3), -1.0),
        "drive_speed_kmh": network.speed_kmh, "synthetic": network.synthetic,
        "geom": shapely.to_wkb(shapely.set_srid(lines, 4326), hex=True, include_srid=True),
    })
