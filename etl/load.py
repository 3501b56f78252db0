"""Load facility records into PostGIS: one transaction per file, all or nothing.

``load_file`` = read → normalise → validate → assign districts → write. A file
with any rejected row writes nothing unless ``accept_partial`` is set; either
way the load run and every reject (row number, id, reason) are stored.
Re-loading the same file changes nothing: the upsert only touches rows whose
source record differs from what the source said last time (``source_hash``),
so an editor's correction or retirement stands until the source changes.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.errors import ETLError, Reject
from layers import get_layer

CHUNK = 50_000

_COLUMNS = ["source_id", "kind", "name", "address", "phone", "opening_hours", "capacity", "opened_on",
            "attrs", "district_adcode", "geom", "point", "synthetic"]


@dataclass
class LoadResult:
    """What a load did; ``as_report()`` is the JSON report."""

    layer: str
    source_name: str
    sha256: str
    crs: str | None
    status: str = "running"
    run_id: int | None = None
    accepted: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_report(self) -> dict:
        return {
            "layer": self.layer, "source": self.source_name, "sha256": self.sha256, "crs": self.crs,
            "status": self.status, "load_run_id": self.run_id, "columns": self.columns, "notes": self.notes,
            "accepted": len(self.accepted), "rejected": len(self.rejects),
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "rejects": [r.as_dict() for r in self.rejects],
            "accepted_rows": [
                {"row": r.get("row"), "source_id": r["source_id"], "name": r["name"],
                 "lon": round(r["point"].x, 7), "lat": round(r["point"].y, 7),
                 "district": r.get("district_adcode")}
                for r in self.accepted],
        }


def file_sha256(path: Path) -> str:
    """Hash of a file and, for a shapefile, its sidecars."""
    digest = hashlib.sha256()
    paths = [path]
    if path.suffix.lower() == ".shp":
        paths += sorted(p for p in path.parent.glob(path.stem + ".*") if p != path)
    for p in paths:
        digest.update(p.read_bytes())
    return digest.hexdigest()


def city_and_districts(engine: Engine):
    """The city polygon and the district polygons (WGS-84) from the database."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT adcode, ST_AsBinary(geom) FROM district ORDER BY adcode")).all()
    if not rows:
        raise ETLError("no districts in the database: run `flask etl demo` (or `flask etl districts`) first")
    codes = [r[0] for r in rows]
    polys = shapely.from_wkb([bytes(r[1]) for r in rows])
    return shapely.union_all(polys), codes, polys


def assign_districts(points: np.ndarray, codes: list[str], polys) -> np.ndarray:
    """District code of each point (``None`` outside all), by point-in-polygon."""
    out = np.full(len(points), None, dtype=object)
    if len(points) == 0:
        return out
    xs = shapely.get_x(points)
    ys = shapely.get_y(points)
    for code, poly in zip(codes, polys):
        shapely.prepare(poly)
        inside = shapely.contains_xy(poly, xs, ys) & (out == None)  # noqa: E711
        out[inside] = code
    return out


def load_file(engine: Engine, path: str | Path, layer: str, *, crs: str | None = None, dry_run: bool = False,
              accept_partial: bool = False, actor: str = "etl", progress: bool = False) -> LoadResult:
    """Load one file into ``layer``; see the module docstring for the rules."""
    from etl.normalise import normalise
    from etl.read import read_source

    get_layer(layer)
    path = Path(path)
    if not path.exists():
        raise ETLError(f"file {str(path)!r} does not exist")
    raw = read_source(path)
    norm = normalise(raw, layer, crs=crs)
    result = LoadResult(layer=layer, source_name=path.name, sha256=file_sha256(path), crs=norm.crs,
                        notes=list(norm.notes), columns=dict(norm.columns), rejects=list(norm.rejects))
    return load_records(engine, norm.records, result, dry_run=dry_run, accept_partial=accept_partial,
                        actor=actor, progress=progress)


def load_records(engine: Engine, records: list[dict], result: LoadResult, *, dry_run: bool = False,
                 accept_partial: bool = False, actor: str = "etl", progress: bool = False,
                 synthetic: bool = False) -> LoadResult:
    """Validate ``records`` (normalised, WGS-84) and write them in one transaction."""
    from etl.validate import validate

    city, codes, polys = city_and_districts(engine)
    checked = validate(records, result.layer, city)
    result.notes += checked.notes
    result.rejects += checked.rejects
    result.rejects.sort(key=lambda r: r.row)
    accepted = checked.accepted
    districts = assign_districts(np.array([r["point"] for r in accepted], dtype=object), codes, polys)
    for rec, code in zip(accepted, districts):
        rec["district_adcode"] = code
    result.accepted = accepted
    if dry_run:
        result.status = "dry_run"
    elif result.rejects and not accept_partial:
        result.status = "rejected"
    else:
        result.status = "partial" if result.rejects else "loaded"
        _write(engine, result, synthetic=synthetic, actor=actor, progress=progress)
        return result
    _record_run(engine, result)
    return result


def _record_run(engine: Engine, result: LoadResult, conn=None) -> None:
    """Store the load run and its rejects (also for runs that wrote nothing)."""
    def _do(c):
        result.run_id = c.execute(text(
            "INSERT INTO load_run (layer, source_name, sha256, crs, status, accepted, rejected, inserted, updated,"
            " unchanged, notes, finished_at) VALUES (:layer, :src, :sha, :crs, :status, :acc, :rej, :ins, :upd,"
            " :unch, CAST(:notes AS jsonb), now()) RETURNING id"),
            {"layer": result.layer, "src": result.source_name, "sha": result.sha256, "crs": result.crs,
             "status": result.status, "acc": len(result.accepted), "rej": len(result.rejects),
             "ins": result.inserted, "upd": result.updated, "unch": result.unchanged,
             "notes": json.dumps(result.notes, ensure_ascii=False)}).scalar_one()
        if result.rejects:
            c.execute(text("INSERT INTO load_reject (load_run_id, row_number, source_id, reason) "
                           "VALUES (:run, :row, :sid, :reason)"),
                      [{"run": result.run_id, "row": r.row, "sid": r.source_id, "reason": r.reason}
                       for r in result.rejects])
    if conn is not None:
        _do(conn)
    else:
        with engine.begin() as c:
            _do(c)


def _staging_frame(records: list[dict], synthetic: bool) -> pd.DataFrame:
    geoms = np.array([r["geom"] for r in records], dtype=object)
    points = np.array([r["point"] for r in records], dtype=object)
    frame = pd.DataFrame({
        "source_id": [str(r["source_id"]) for r in records],
        "kind": [r.get("kind") for r in records],
        "name": [r["name"] for r in records],
        "address": [r.get("address") for r in records],
        "phone": [r.get("phone") for r in records],
        "opening_hours": [r.get("opening_hours") for r in records],
        "capacity": pd.array([r.get("capacity") for r in records], dtype="Int64"),
        "opened_on": [r.get("opened_on").isoformat() if r.get("opened_on") else None for r in records],
        "attrs": [json.dumps(r.get("attrs") or {}, ensure_ascii=False, default=str) for r in records],
        "district_adcode": [r.get("district_adcode") for r in records],
        "geom": shapely.to_wkb(geoms, hex=True, include_srid=False),
        "point": shapely.to_wkb(points, hex=True, include_srid=False),
        "synthetic": [bool(synthetic or (r.get("attrs") or {}).get("synthetic")) for r in records],
    })
    return frame[_COLUMNS]


def _copy(conn, frame: pd.DataFrame, table: str, columns: list[str]) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="\\N")
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buf)


_UPSERT = """
WITH src AS (
    SELECT s.*, md5(concat_ws('|', s.kind, s.name, s.address, s.phone, s.opening_hours, s.capacity::text,
                              s.opened_on::text, s.attrs::text, s.district_adcode, encode(ST_AsBinary(s.geom), 'hex')))
                AS source_hash
    FROM staging s
), up AS (
    INSERT INTO facility AS f (layer, source_id, kind, name, address, phone, opening_hours, capacity, opened_on,
                               attrs, district_adcode, geom, point, synthetic, load_run_id, source_hash)
    SELECT :layer, s.source_id, s.kind, s.name, s.address, s.phone, s.opening_hours, s.capacity, s.opened_on,
           s.attrs, s.district_adcode, ST_SetSRID(s.geom, 4326), ST_SetSRID(s.point, 4326), s.synthetic, :run,
           s.source_hash
    FROM src s
    ON CONFLICT (layer, source_id) DO UPDATE SET
        kind = EXCLUDED.kind, name = EXCLUDED.name, address = EXCLUDED.address, phone = EXCLUDED.phone,
        opening_hours = EXCLUDED.opening_hours, capacity = EXCLUDED.capacity, opened_on = EXCLUDED.opened_on,
        attrs = EXCLUDED.attrs, district_adcode = EXCLUDED.district_adcode, geom = EXCLUDED.geom,
        point = EXCLUDED.point, synthetic = EXCLUDED.synthetic, load_run_id = EXCLUDED.load_run_id,
        source_hash = EXCLUDED.source_hash, version = f.version + 1, updated_at = now()
    -- Only when the source's record changed since it was last loaded: re-running a file changes
    -- nothing, and an editor's correction or retirement stands until the source itself changes.
    -- A retired facility stays retired.
    WHERE f.source_hash IS DISTINCT FROM EXCLUDED.source_hash
    RETURNING f.id, (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
"""

_LOG_UPDATES = """
INSERT INTO change_log (facility_id, actor, action, before, after, load_run_id)
SELECT f.id, :actor, 'load', to_jsonb(o) - 'geom' - 'point', to_jsonb(f) - 'geom' - 'point', :run
FROM facility f JOIN staging_old o ON o.id = f.id
WHERE f.load_run_id = :run AND f.version <> o.version
"""


def _write(engine: Engine, result: LoadResult, *, synthetic: bool, actor: str, progress: bool) -> None:
    """One transaction: lock the layer, stage with COPY, upsert, log, record the run."""
    frame = _staging_frame(result.accepted, synthetic)
    with engine.begin() as conn:
        # Two loads of one layer never interleave: the second waits for the first.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('minsheng-load'), hashtext(:layer))"),
                     {"layer": result.layer})
        conn.execute(text(
            "CREATE TEMP TABLE staging (source_id text, kind text, name text, address text, phone text,"
            " opening_hours text, capacity integer, opened_on date, attrs jsonb, district_adcode text,"
            " geom geometry, point geometry, synthetic boolean) ON COMMIT DROP"))
        chunks = range(0, len(frame), CHUNK)
        if progress and len(frame) > CHUNK:
            from tqdm import tqdm
            chunks = tqdm(chunks, desc=f"loading {result.layer}", unit="chunk")
        for start in chunks:
            _copy(conn, frame.iloc[start:start + CHUNK], "staging", _COLUMNS)
        conn.execute(text("CREATE TEMP TABLE staging_old ON COMMIT DROP AS SELECT f.* FROM facility f "
                          "JOIN staging s ON s.source_id = f.source_id WHERE f.layer = :layer"),
                     {"layer": result.layer})
        _record_run(engine, result, conn)
        inserted, updated = conn.execute(text(_UPSERT), {"layer": result.layer, "run": result.run_id}).one()
        conn.execute(text(_LOG_UPDATES), {"actor": actor, "run": result.run_id})
        result.inserted, result.updated = int(inserted), int(updated)
        result.unchanged = len(result.accepted) - result.inserted - result.updated
        conn.execute(text("UPDATE load_run SET inserted = :i, updated = :u, unchanged = :n WHERE id = :run"),
                     {"i": result.inserted, "u": result.updated, "n": result.unchanged, "run": result.run_id})
