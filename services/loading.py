"""Loading data: a facility file, a candidate-site set, the districts, the demo city.

The use cases behind ``flask etl load|candidates|demo``. Each opens one
connection and runs the ETL's steps on it (:mod:`etl.load`: one transaction
per file, all or nothing); the SQL is :mod:`db.loading` and
:mod:`db.demo_city`. A file that cannot be loaded at all (unreadable, no CRS,
no coordinate columns, a bad set name) raises
:class:`services.errors.InvalidRequest` naming what was wrong; rows that fail
their checks are reported in the result instead.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from db import demo_city as db_demo
from db import loading as db_loading
from demo import DemoCity, build_demo_city
from demo.roads import demo_places, write_demo_roads
from etl import candidates as etl_candidates
from etl import load as etl_load
from etl.boundaries import BOUNDARIES, CENSUS, SOURCE, read_districts
from etl.errors import ETLError, Reject
from etl.load import LoadResult
from geo.errors import CRSError
from layers import LAYERS
from services import roads
from services.errors import InvalidRequest, ServiceError

_ROOT = Path(__file__).resolve().parents[1]
#: What the demo city is made from: when any of these files changes, ``load_demo`` rebuilds it.
DEMO_SOURCES: tuple[Path, ...] = (
    BOUNDARIES, CENSUS, *sorted((_ROOT / "demo").glob("*.py")), *sorted((_ROOT / "layers").glob("*.py")),
    *(_ROOT / "etl" / name for name in ("boundaries.py", "load.py", "validate.py", "duplicates.py", "staging.py",
                                       "roads.py")),
    *(_ROOT / "db" / name for name in ("loading.py", "rebuild.py", "partitions.py", "demo_city.py", "roads.py")),
    Path(__file__).resolve())

Echo = Callable[[str], Any]


# ------------------------------------------------------------------ files
def load_file(engine: Engine, path: str | Path, layer: str, *, crs: str | None = None, dry_run: bool = False,
              accept_partial: bool = False, actor: str = "etl", progress: bool = False,
              chunk_rows: int = 100_000) -> LoadResult:
    """Load one facility file into ``layer`` (see :func:`etl.load.load_file` for the rules).

    Raises
    ------
    InvalidRequest
        The file cannot be loaded at all; nothing is written. When the file
        was refused part-way through, a ``failed`` load run names why.
    LoadFailed
        The database connection was lost during the load: nothing was
        written, and the run is recorded as ``failed`` when the database
        can be reached again at once. The message is one line.
    """
    try:
        with engine.connect() as conn, _as_invalid("file"):
            return etl_load.load_file(conn, path, layer, crs=crs, dry_run=dry_run, accept_partial=accept_partial,
                                      actor=actor, progress=progress, chunk_rows=chunk_rows)
    except etl_load.LoadInterrupted as exc:
        raise LoadFailed(_record_interrupted(engine, exc)) from exc


class LoadFailed(ServiceError):
    """A load stopped by the database (a lost connection); nothing of it was written."""


def _record_interrupted(engine: Engine, exc: etl_load.LoadInterrupted) -> str:
    """Record an interrupted load as a failed run on a new connection; the one-line message to show."""
    what = (f"the database connection was lost during the load of {exc.result.source_name} into "
            f"{exc.result.layer} ({exc.reason}); nothing was written")
    try:
        with engine.connect() as conn:
            run_id = etl_load.record_failed_run(conn, exc.result, f"database connection lost: {exc.reason}")
    except DBAPIError as again:
        first = str(again.orig or again).strip().splitlines()[0] if str(again.orig or again).strip() else ""
        return f"{what}; the failed run could not be recorded either ({first})"
    return f"{what}; recorded as failed load run {run_id}"


def load_candidates(engine: Engine, path: str | Path, set_name: str, *,
                    crs: str | None = None) -> tuple[int, list[Reject]]:
    """Replace candidate set ``set_name`` with the sites in ``path``; return (loaded, rejects).

    A file with any rejected row writes nothing (the set stays as it was).

    Raises
    ------
    InvalidRequest
        A bad set name (``parameter`` "set") or a file that cannot be read.
    """
    with _as_invalid("set"):
        etl_candidates.check_set_name(set_name)
    with engine.begin() as conn, _as_invalid("file"):
        sites, rejects = etl_candidates.candidate_sites(conn, path, crs=crs)
        if rejects:
            return 0, rejects
        db_loading.replace_candidate_set(conn, set_name, sites)
    return len(sites), []


@contextmanager
def _as_invalid(parameter: str) -> Iterator[None]:
    """Turn an ETL or CRS error into :class:`InvalidRequest` naming ``parameter``."""
    try:
        yield
    except (ETLError, CRSError) as exc:
        raise InvalidRequest(str(exc), parameter=parameter) from exc


# ------------------------------------------------------------------ districts
def write_districts(engine: Engine, districts: gpd.GeoDataFrame) -> None:
    """Upsert the districts (WGS-84 frame from :func:`etl.boundaries.read_districts`) in one transaction."""
    with engine.begin() as conn:
        _write_districts(conn, districts)


def load_districts(engine: Engine) -> int:
    """Read the real district boundaries and census (``data/``) and write them; returns how many."""
    districts = read_districts()
    write_districts(engine, districts)
    return len(districts)


def _write_districts(conn: Connection, districts: gpd.GeoDataFrame) -> None:
    db_demo.upsert_districts(conn, [{
        "adcode": r.adcode, "name_zh": r.name_zh, "name_en": r.name_en, "population": int(r.population),
        "urban": int(r.urban_population), "rural": int(r.rural_population), "area": float(r.area_km2),
        "seat": shapely.to_wkb(shapely.Point(r.seat_lon, r.seat_lat), hex=True),
        "geom": shapely.to_wkb(r.geometry, hex=True), "source": SOURCE,
    } for r in districts.itertuples()])


# ------------------------------------------------------------------ the demo city
def demo_fingerprint(*, seed: int, resolution_m: float, scale: float) -> str:
    """Hash of everything the demo city is made from (:data:`DEMO_SOURCES`) and its parameters."""
    digest = hashlib.sha256()
    for path in DEMO_SOURCES:
        digest.update(path.read_bytes())
    digest.update(json.dumps([seed, resolution_m, scale]).encode())
    return digest.hexdigest()


def load_demo(engine: Engine, *, seed: int = 20221, resolution_m: float = 250.0, scale: float = 1.0,
              force: bool = False, progress: bool = False, echo: Echo = print) -> dict[str, Any]:
    """Build and load the demo city unless the same build is already loaded.

    Real districts and census totals; synthetic grid, villages and
    facilities (every layer of the registry, through the ordinary validated
    load path). Idempotent: the fingerprint of the inputs is stored in
    ``app_meta`` and nothing is reloaded when it matches (unless ``force``).

    Returns
    -------
    dict
        ``{"skipped": True}``, or ``skipped`` False with ``counts`` per layer and ``seconds``.
    """
    fp = demo_fingerprint(seed=seed, resolution_m=resolution_m, scale=scale)
    with engine.connect() as conn:
        with conn.begin():
            stored = db_demo.fingerprint(conn)
        if not force and stored is not None and stored.get("fingerprint") == fp:
            echo("demo city already loaded and unchanged: nothing to do")
            return {"skipped": True}
        started = time.perf_counter()
        districts = read_districts()
        with conn.begin():
            _write_districts(conn, districts)
        echo(f"districts: {len(districts)} (population {int(districts.population.sum()):,})")
        city = build_demo_city(districts, seed=seed, resolution_m=resolution_m, scale=scale)
        echo(f"synthetic grid: {len(city.cells):,} cells of {resolution_m:g} m; {len(city.villages):,} villages")
        with conn.begin():
            db_demo.replace_grid(conn, _cell_rows(city.cells, resolution_m), _village_rows(city.villages))
            db_demo.analyze(conn, ("demand_cell", "village"))
        source = f"demo:seed={seed}:res={resolution_m:g}:scale={scale:g}"
        counts = _write_facilities(conn, city.facilities, source=source, progress=progress)
        echo("facilities: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        network = load_demo_roads(engine, city, districts, seed=seed, progress=progress)
        echo(f"synthetic road network: {network.edges:,} edges, {network.vertices:,} vertices "
             f"(written as OSM XML, imported like any extract)")
        with conn.begin():
            db_demo.set_fingerprint(conn, json.dumps({"fingerprint": fp, "seed": seed, "resolution_m": resolution_m,
                                                      "scale": scale, "synthetic": True}))
    elapsed = time.perf_counter() - started
    echo(f"demo city loaded in {elapsed:.1f} s")
    return {"skipped": False, "counts": counts, "seconds": elapsed}


def load_demo_roads(engine: Engine, city: DemoCity, districts: gpd.GeoDataFrame, *, seed: int,
                    progress: bool = False) -> roads.ImportReport:
    """The demo city's synthetic road network, written as an OSM file and imported by the real importer.

    Seats are the real district seats; towns the demo's secondary urban
    centres; every synthetic village gets its road (:func:`demo.roads.demo_places`).
    The file goes through :func:`services.roads.import_roads`, the path ``flask etl roads`` takes.
    """
    with tempfile.TemporaryDirectory(prefix="minsheng-demo-roads-") as tmp:
        path = Path(tmp) / "demo-roads.osm"
        write_demo_roads(path, *demo_places(city, districts), list(districts.geometry), seed=seed)
        return roads.import_roads(engine, path, progress=progress)


def _ewkt(frame: gpd.GeoDataFrame) -> pd.Series:
    return "SRID=4326;" + pd.Series(shapely.to_wkt(frame.geometry.values, rounding_precision=7), index=frame.index)


def _cell_rows(cells: gpd.GeoDataFrame, resolution_m: float) -> pd.DataFrame:
    return pd.DataFrame({
        "cell_id": cells["cell_id"], "district_adcode": cells["adcode"],
        "population": cells["population"].astype(int), "urban": cells["urban"].astype(bool),
        "resolution_m": resolution_m, "x_m": cells["x_m"], "y_m": cells["y_m"], "geom": _ewkt(cells),
        "synthetic": True,
    })


def _village_rows(villages: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "village_id": villages["village_id"], "name": villages["name"], "district_adcode": villages["adcode"],
        "population": villages["population"].astype(int), "geom": _ewkt(villages), "synthetic": True,
    })


def _records(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Facility rows of the generator as the ETL's normalised records (WGS-84)."""
    return [{
        "row": i, "source_id": r.source_id, "kind": r.kind, "name": r.name, "address": r.address,
        "phone": r.phone, "opening_hours": r.opening_hours,
        "capacity": None if pd.isna(r.capacity) else int(r.capacity),
        "opened_on": r.opened_on, "attrs": dict(r.attrs or {}, synthetic=True), "geom": r.geometry,
    } for i, r in enumerate(frame.itertuples(index=False), start=1)]


def _write_facilities(conn: Connection, facilities: gpd.GeoDataFrame, *, source: str,
                      progress: bool = False) -> dict[str, int]:
    """Load each layer through the ordinary validated, transactional path; drop stale synthetic rows."""
    counts = {}
    sha = hashlib.sha256(source.encode()).hexdigest()
    for layer in LAYERS:
        part = facilities[facilities["layer"] == layer]
        result = LoadResult(layer=layer, source_name=source, sha256=sha, crs="wgs84")
        etl_load.load_records(conn, _records(part), result, actor="demo", progress=progress, synthetic=True)
        if result.rejects:
            raise RuntimeError(f"demo layer {layer}: {len(result.rejects)} rejects, first: {result.rejects[0]}")
        counts[layer] = len(result.accepted)
        with conn.begin():  # synthetic facilities of an earlier, different demo build go
            db_demo.delete_stale_synthetic(conn, layer, [str(s) for s in part["source_id"]])
    with conn.begin():
        db_demo.analyze(conn, ("facility",))
    return counts
