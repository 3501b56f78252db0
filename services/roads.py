"""Road networks: import an OpenStreetMap file (``flask etl roads FILE``) and load the graph of a travel mode.

Import = read and build the network (``etl.roads``, before any database
work, so a bad file stops here), then one transaction that replaces the
whole network and records the import (``db.roads``): all or nothing, and
readers keep the old network until the commit. Progress bars (tqdm) go to
stderr when asked for.

The graph of a mode (:func:`graph`) is built from the edges that mode may use
(``db.roads.EDGES_SQL``) and cached until the network changes (the
``roads`` data version only, ``services.cache.memo``: a facility edit keeps it).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy.engine import Engine
from tqdm import tqdm

from db import roads as db_roads
from etl import roads as etl_roads
from etl.errors import ETLError
from geo import network
from services.cache import memo
from services.errors import InvalidRequest, NotFound

#: The travel modes the network routes.
NETWORK_MODES: tuple[str, ...] = db_roads.NETWORK_MODES


@dataclass
class ImportReport:
    """What an import did: counts, connectivity per mode, and what was dropped and why.

    ``components`` counts the connected pieces of each mode's network (one-way
    rules ignored; pgRouting's ``pgr_connectedComponents``) and ``largest_share``
    the share of that mode's road length in the largest piece; a low share
    means islands that a route cannot leave.
    """

    import_id: int
    source_name: str
    format: str
    synthetic: bool
    ways_read: int
    ways_used: int
    edges: int
    vertices: int
    missing_nodes: int
    length_km: dict[str, float] = field(default_factory=dict)
    components: dict[str, int] = field(default_factory=dict)
    largest_share: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as lines for a terminal."""
        out = [f"{self.source_name}: {self.edges:,} edges, {self.vertices:,} vertices from {self.ways_used:,} of "
               f"{self.ways_read:,} highway ways (import {self.import_id}, {self.seconds:.1f} s"
               + (", synthetic)" if self.synthetic else ")")]
        for mode in db_roads.NETWORK_MODES:
            out.append(f"  {mode}: {self.length_km.get(mode, 0.0):,.1f} km in {self.components.get(mode, 0):,} "
                       f"connected pieces, the largest holds {100 * self.largest_share.get(mode, 0.0):.1f} %")
        if self.missing_nodes:
            out.append(f"  {self.missing_nodes:,} node references point outside the file (ways cut there)")
        for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            out.append(f"  dropped {n:,} ways: {reason}")
        return out


def import_roads(engine: Engine, path: Path, *, progress: bool = False) -> ImportReport:
    """Replace the road network with the one in ``path`` (``.osm.pbf`` or ``.osm``), all or nothing.

    Raises
    ------
    InvalidRequest
        ``parameter="file"``: the file is missing, not OSM, cut short, or holds
        no road; the network in the database is left as it was.
    """
    started = time.perf_counter()
    try:
        fmt = etl_roads.file_format(path)
        with tqdm(desc="reading ways", unit=" ways", disable=not progress, leave=False) as bar:
            built = etl_roads.read_network(path, tick=bar.update)
    except ETLError as exc:
        raise InvalidRequest(str(exc), parameter="file", allowed=sorted(etl_roads.SUFFIXES)) from None
    vertices, edges = etl_roads.vertex_frame(built), etl_roads.edge_frame(built)
    report = _report(built, path, fmt)
    record = {"source_name": path.name, "source_sha256": _sha256(path), "source_bytes": path.stat().st_size,
              "format": fmt, "synthetic": report.synthetic, "edges": report.edges, "vertices": report.vertices}
    with tqdm(total=len(vertices) + len(edges), desc="writing network", unit=" rows", disable=not progress,
              leave=False) as bar, engine.begin() as conn:
        db_roads.replace_network(conn, vertices, edges, progress=bar.update)
        for mode in db_roads.NETWORK_MODES:
            pieces, share = db_roads.components(conn, mode)
            report.components[mode], report.largest_share[mode] = pieces, round(share, 4)
        report.seconds = round(time.perf_counter() - started, 2)
        record["report"] = {k: v for k, v in report.as_dict().items() if k != "import_id"}
        report.import_id = db_roads.record_import(conn, record)
    return report


def _report(built: etl_roads.Network, path: Path, fmt: str) -> ImportReport:
    report = ImportReport(import_id=0, source_name=path.name, format=fmt,
                          synthetic=bool(built.n_edges and built.synthetic.all()), ways_read=built.ways_read,
                          ways_used=built.ways_used, edges=built.n_edges, vertices=built.n_vertices,
                          missing_nodes=built.missing_nodes, dropped=dict(built.dropped))
    report.length_km = {"walk": round(float(built.length_m[built.walk].sum()) / 1000.0, 3),
                        "drive": round(float(built.length_m[built.drive].sum()) / 1000.0, 3)}
    return report


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_import(engine: Engine) -> dict[str, Any]:
    """The record of the import behind the current network.

    Raises
    ------
    NotFound
        When no road network was imported.
    """
    with engine.connect() as conn:
        row = db_roads.latest_import(conn)
    if row is None:
        raise NotFound("no road network has been imported: run `flask etl roads FILE`")
    return row


def loaded_network(engine: Engine) -> dict[str, Any] | None:
    """The record of the import behind the current network, or None when no network (with an edge) is loaded."""
    with engine.connect() as conn:
        row = db_roads.latest_import(conn)
    return row if row is not None and row["edges"] > 0 else None


def check_mode(mode: str) -> str:
    """``mode`` when the network routes it, else :class:`InvalidRequest` naming the modes allowed."""
    allowed = list(db_roads.NETWORK_MODES)
    if mode not in allowed:
        raise InvalidRequest(f"travel mode was {mode!r} but the road network routes {', '.join(allowed)}",
                             parameter="by", allowed=allowed)
    return mode


def graph(engine: Engine, mode: str) -> network.Graph:
    """The in-memory graph of ``mode`` (``walk`` or ``drive``), rebuilt only after the network changes."""
    check_mode(mode)
    return memo(engine, "roads.graph", mode, lambda: _load_graph(engine, mode), families=("roads",),
                held=True)


def _load_graph(engine: Engine, mode: str) -> network.Graph:
    with engine.connect() as conn:
        vertices = db_roads.vertex_arrays(conn)
        edges = db_roads.edge_arrays(conn, mode)
    return network.build_graph(vertices["id"], vertices["xy"], edges["id"], edges["source"], edges["target"],
                               edges["length_m"], edges["forward"], edges["backward"], shapely.from_wkb(edges["wkb"]))
