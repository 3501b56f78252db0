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
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.errors import ETLError, Reject
from layers import get_layer

_COLUMNS = ["row_number", "source_id", "kind", "name", "address", "phone", "opening_hours", "capacity", "opened_on",
            "attrs", "district_adcode", "geom", "point", "synthetic"]


@dataclass
class AcceptedRows:
    """What the report says of each accepted row, kept compact (a file may have millions)."""

    row: array = field(default_factory=lambda: array("q"))
    source_id: list = field(default_factory=list)
    lon: array = field(default_factory=lambda: array("d"))
    lat: array = field(default_factory=lambda: array("d"))
    district: list = field(default_factory=list)

    def add(self, records: list[dict]) -> None:
        for r in records:
            self.row.append(int(r.get("row") or 0))
            self.source_id.append(r["source_id"])
            self.lon.append(round(r["point"].x, 7))
            self.lat.append(round(r["point"].y, 7))
            self.district.append(r.get("district_adcode"))

    def drop(self, source_rows: set[int]) -> None:
        """Forget rows (by file row number) that a later check turned away."""
        keep = [i for i, r in enumerate(self.row) if r not in source_rows]
        self.row = array("q", (self.row[i] for i in keep))
        self.source_id = [self.source_id[i] for i in keep]
        self.lon = array("d", (self.lon[i] for i in keep))
        self.lat = array("d", (self.lat[i] for i in keep))
        self.district = [self.district[i] for i in keep]

    def __len__(self) -> int:
        return len(self.row)

    def as_dicts(self) -> list[dict]:
        return [{"row": r, "source_id": i, "lon": x, "lat": y, "district": d}
                for r, i, x, y, d in zip(self.row, self.source_id, self.lon, self.lat, self.district)]


@dataclass
class LoadResult:
    """What a load did; ``as_report()`` is the JSON report."""

    layer: str
    source_name: str
    sha256: str
    crs: str | None
    status: str = "running"
    run_id: int | None = None
    accepted: AcceptedRows = field(default_factory=AcceptedRows)
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
            "accepted_rows": self.accepted.as_dicts(),
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
              accept_partial: bool = False, actor: str = "etl", progress: bool = False,
              chunk_rows: int = 100_000) -> LoadResult:
    """Load one file into ``layer``; see the module docstring for the rules.

    Large CSV files are read, checked and staged ``chunk_rows`` rows at a
    time inside the one transaction, so memory stays bounded.
    """
    from etl.normalise import normalise
    from etl.read import iter_source

    get_layer(layer)
    path = Path(path)
    if not path.exists():
        raise ETLError(f"file {str(path)!r} does not exist")
    chunks = iter_source(path, chunk_rows)
    first = next(chunks)  # an unreadable file fails here, before the database is touched
    result = LoadResult(layer=layer, source_name=path.name, sha256=file_sha256(path), crs=None)
    first_norm = normalise(first, layer, crs=crs)  # so is a file with no CRS or no coordinate columns

    def batches() -> Iterator[list[dict]]:
        norm = first_norm
        result.crs, result.columns = norm.crs, dict(norm.columns)
        while True:
            _add_notes(result, norm.notes)
            result.rejects += norm.rejects
            yield norm.records
            raw = next(chunks, None)
            if raw is None:
                return
            norm = normalise(raw, layer, crs=crs)

    return _load(engine, batches(), result, dry_run=dry_run, accept_partial=accept_partial, actor=actor,
                 progress=progress)


def load_records(engine: Engine, records: list[dict], result: LoadResult, *, dry_run: bool = False,
                 accept_partial: bool = False, actor: str = "etl", progress: bool = False,
                 synthetic: bool = False) -> LoadResult:
    """Validate ``records`` (normalised, WGS-84) and write them in one transaction."""
    return _load(engine, [records], result, dry_run=dry_run, accept_partial=accept_partial, actor=actor,
                 progress=progress, synthetic=synthetic)


MAX_NOTES = 200


def _add_notes(result: LoadResult, notes: list[str]) -> None:
    for note in notes:
        if note in result.notes:
            continue
        if len(result.notes) == MAX_NOTES:
            result.notes.append("… more notes left out")
        if len(result.notes) <= MAX_NOTES:
            result.notes.append(note)


def _load(engine: Engine, batches: Iterable[list[dict]], result: LoadResult, *, dry_run: bool,
          accept_partial: bool, actor: str, progress: bool, synthetic: bool = False) -> LoadResult:
    """One transaction: lock the layer, then validate and stage each batch with COPY; then either
    upsert and commit, or (a dry run, or rejects without ``accept_partial``) roll back and record why."""
    from etl.validate import validate

    city, codes, polys = city_and_districts(engine)
    pieces = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc=f"loading {result.layer}", unit=" rows", disable=None)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            # Two loads of one layer never interleave: the second waits for the first.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('minsheng-load'), hashtext(:layer))"),
                         {"layer": result.layer})
            conn.execute(text(
                "CREATE TEMP TABLE staging (row_number integer, source_id text, kind text, name text, address text, phone text,"
                " opening_hours text, capacity integer, opened_on date, attrs jsonb, district_adcode text,"
                " geom geometry, point geometry, synthetic boolean) ON COMMIT DROP"))
            for records in batches:
                checked = validate(records, result.layer, city)
                pieces += 1
                _add_notes(result, checked.notes)
                result.rejects += checked.rejects
                accepted = checked.accepted
                districts = assign_districts(np.array([r["point"] for r in accepted], dtype=object), codes, polys)
                for rec, code in zip(accepted, districts):
                    rec["district_adcode"] = code
                result.accepted.add(accepted)
                if accepted:
                    _copy(conn, _staging_frame(accepted, synthetic), "staging", _COLUMNS)
                if bar is not None:
                    bar.update(len(records))
            if pieces > 1:
                _repeats_across_pieces(conn, result, dry_run)
            result.rejects.sort(key=lambda r: (r.row is None, r.row))
            if dry_run or (result.rejects and not accept_partial):
                result.status = "dry_run" if dry_run else "rejected"
                trans.rollback()
                _record_run(engine, result)
                return result
            result.status = "partial" if result.rejects else "loaded"
            _upsert(conn, result, actor)
            trans.commit()
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
        finally:
            if bar is not None:
                bar.close()
    return result


def _record_run(engine: Engine | None, result: LoadResult, conn=None) -> None:
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
        "row_number": [int(r.get("row") or 0) for r in records],
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


_REPEATS = """
SELECT row_number, source_id, name, first_row, first_name,
       ST_DistanceSphere(point, first_point) AS metres
FROM (SELECT row_number, source_id, name, point,
             first_value(row_number) OVER w AS first_row, first_value(name) OVER w AS first_name,
             first_value(point) OVER w AS first_point, row_number() OVER w AS k
      FROM staging WHERE source_id IN (SELECT source_id FROM staging GROUP BY source_id HAVING count(*) > 1)
      WINDOW w AS (PARTITION BY source_id ORDER BY row_number)) t
WHERE k > 1 ORDER BY row_number
"""


def _repeats_across_pieces(conn, result: LoadResult, dry_run: bool) -> None:
    """A file read in pieces: a source id repeated in a later piece is collapsed (same name, within
    :data:`etl.validate.DUPLICATE_DISTANCE_M`) or rejected, as within one piece."""
    from etl.validate import DUPLICATE_DISTANCE_M

    dropped: set[int] = set()
    for row, sid, name, first_row, first_name, metres in conn.execute(text(_REPEATS)).all():
        dropped.add(row)
        if name != first_name:
            result.rejects.append(Reject(row, sid, f"source_id {sid} is already used by row {first_row} with "
                                                   f"another name ({first_name!r}, here {name!r})"))
        elif metres > DUPLICATE_DISTANCE_M:
            result.rejects.append(Reject(row, sid, f"source_id {sid} is already used by row {first_row}, "
                                                   f"{metres:.0f} m away (more than {DUPLICATE_DISTANCE_M:.0f} m: "
                                                   "a different place)"))
        else:
            _add_notes(result, [f"row {row} ({sid}) repeats row {first_row}; loaded once"])
    if dropped:
        conn.execute(text("DELETE FROM staging WHERE row_number = ANY(:rows)"), {"rows": sorted(dropped)})
        result.accepted.drop(dropped)


def _upsert(conn, result: LoadResult, actor: str) -> None:
    """Within the load's transaction: upsert the staged rows, log updates, record the run."""
    conn.execute(text("CREATE TEMP TABLE staging_old ON COMMIT DROP AS SELECT f.* FROM facility f "
                      "JOIN staging s ON s.source_id = f.source_id WHERE f.layer = :layer"),
                 {"layer": result.layer})
    _record_run(None, result, conn)
    inserted, updated = conn.execute(text(_UPSERT), {"layer": result.layer, "run": result.run_id}).one()
    conn.execute(text(_LOG_UPDATES), {"actor": actor, "run": result.run_id})
    result.inserted, result.updated = int(inserted), int(updated)
    result.unchanged = len(result.accepted) - result.inserted - result.updated
    conn.execute(text("UPDATE load_run SET inserted = :i, updated = :u, unchanged = :n WHERE id = :run"),
                 {"i": result.inserted, "u": result.updated, "n": result.unchanged, "run": result.run_id})
