"""SQL of the loads: staging with COPY, the facility upsert, load runs and rejects, candidate sets.

Every function takes a :class:`~sqlalchemy.engine.Connection` inside the
caller's transaction (the ETL holds one transaction per load, see
:mod:`etl.load`); nothing here begins or commits. SQL is static with bound
parameters; the only names written into statements are the fixed staging
and table names of this module. Geometries arrive as WKB hex in WGS-84 lon/lat
(EPSG:4326).
"""
from __future__ import annotations

import io
import json
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd
import psycopg2
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from db import partitions

#: Columns of the staging table, in COPY order. ``point`` is NULL where it is ``geom`` itself (a point).
STAGING_COLUMNS = ("row_number", "source_id", "kind", "name", "address", "phone", "opening_hours", "capacity",
                   "opened_on", "attrs", "district_adcode", "geom", "point", "synthetic")

#: Bytes sent to the server per COPY message (psycopg2's default is 8 KiB).
COPY_BLOCK = 1 << 20
#: Tables :func:`copy_frame` and :func:`copy_rows` may write (COPY takes no bound table name).
_COPY_TABLES = ("staging", "demand_cell", "village")

_DISTRICTS = text("SELECT adcode, ST_AsBinary(geom) AS wkb FROM district ORDER BY adcode")

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('minsheng-load'), hashtext(:layer))")

_STAGING = text(
    "CREATE TEMP TABLE staging (row_number integer, source_id text, kind text, name text, address text,"
    " phone text, opening_hours text, capacity integer, opened_on date, attrs jsonb, district_adcode text,"
    " geom geometry, point geometry, synthetic boolean) ON COMMIT DROP")

#: Every row of a source id staged more than once, by id and row; position in lon/lat degrees.
_REPEATS = text("""
SELECT row_number, source_id, name, ST_X(coalesce(point, geom)) AS lon, ST_Y(coalesce(point, geom)) AS lat,
       address, phone, opening_hours,
       capacity, opened_on, kind, attrs
FROM staging WHERE source_id IN (SELECT source_id FROM staging GROUP BY source_id HAVING count(*) > 1)
ORDER BY source_id, row_number
""")

_STAGED_OF = text("SELECT row_number, source_id FROM staging WHERE source_id = ANY(:ids) ORDER BY row_number")

_DROP_STAGED = text("DELETE FROM staging WHERE row_number = ANY(:rows)")

#: A load run; its id is the one reserved for it (a full reload's rows carry it before it is recorded), else new.
_RUN = text(
    "INSERT INTO load_run (id, layer, source_name, sha256, crs, status, accepted, rejected, inserted, updated,"
    " unchanged, notes, finished_at) VALUES (coalesce(CAST(:id AS bigint),"
    " nextval(pg_get_serial_sequence('load_run', 'id'))), :layer, :source, :sha256, :crs, :status, :accepted,"
    " :rejected, :inserted, :updated, :unchanged, CAST(:notes AS jsonb), now()) RETURNING id")

_REJECT = text("INSERT INTO load_reject (load_run_id, row_number, source_id, reason) "
               "VALUES (:run, :row, :source_id, :reason)")

_RUN_COUNTS = text("UPDATE load_run SET inserted = :inserted, updated = :updated, unchanged = :unchanged "
                   "WHERE id = :run")

_OLD_ROWS = text("CREATE TEMP TABLE staging_old ON COMMIT DROP AS SELECT f.* FROM facility f "
                 "JOIN staging s ON s.source_id = f.source_id WHERE f.layer = :layer")

#: The hash of a staged record as its source gave it (``s`` is a staging row); stored in ``source_hash``.
SOURCE_HASH = ("md5(concat_ws('|', s.kind, s.name, s.address, s.phone, s.opening_hours, s.capacity::text,"
               " s.opened_on::text, s.attrs::text, s.district_adcode, encode(ST_AsBinary(s.geom), 'hex')))")

_UPSERT = text(f"""
WITH src AS (
    SELECT s.*, {SOURCE_HASH} AS source_hash
    FROM staging s
), up AS (
    INSERT INTO facility AS f (layer, source_id, kind, name, address, phone, opening_hours, capacity, opened_on,
                               attrs, district_adcode, geom, point, synthetic, load_run_id, source_hash)
    SELECT :layer, s.source_id, s.kind, s.name, s.address, s.phone, s.opening_hours, s.capacity, s.opened_on,
           s.attrs, s.district_adcode, ST_SetSRID(s.geom, 4326),
       ST_SetSRID(coalesce(s.point, s.geom), 4326), s.synthetic, :run,
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
    RETURNING f.id, (f.version = 1) AS inserted  -- an update always raises the version
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
""")

_LOG_UPDATES = text("""
INSERT INTO change_log (facility_id, actor, action, before, after, load_run_id)
SELECT f.id, :actor, 'load', to_jsonb(o) - 'geom' - 'point', to_jsonb(f) - 'geom' - 'point', :run
FROM facility f JOIN staging_old o ON o.id = f.id
WHERE f.load_run_id = :run AND f.version <> o.version
""")

_DELETE_SET = text("DELETE FROM candidate_site WHERE set_name = :set_name")
_INSERT_SITE = text(
    "INSERT INTO candidate_site (set_name, source_id, name, district_adcode, point) VALUES "
    "(:set_name, :source_id, :name, :district_adcode, ST_SetSRID(ST_GeomFromWKB(decode(:wkb, 'hex')), 4326))")


# ------------------------------------------------------------------ districts and locks
def district_polygons(conn: Connection) -> list[tuple[str, bytes]]:
    """``(adcode, WKB)`` of every district (WGS-84 MultiPolygon), by adcode."""
    return [(r.adcode, bytes(r.wkb)) for r in conn.execute(_DISTRICTS)]


def lock_layer(conn: Connection, layer: str) -> None:
    """Wait for any other load of ``layer`` to finish; held until this transaction ends."""
    conn.execute(_LOCK, {"layer": layer})


# ------------------------------------------------------------------ staging
def create_staging(conn: Connection) -> None:
    """The temporary ``staging`` table (columns :data:`STAGING_COLUMNS`), dropped at commit."""
    conn.execute(_STAGING)


def copy_frame(conn: Connection, frame: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    """Append ``frame`` (columns in ``columns`` order; ``None`` as NULL) to ``table`` with COPY.

    Raises
    ------
    ValueError
        When ``table`` is not one of the tables loads write.
    """
    data = str(frame.to_csv(index=False, header=False, na_rep="\\N"))
    _copy(conn, data, table, columns, " WITH (FORMAT csv, NULL '\\N')")


def copy_rows(conn: Connection, rows: str, table: str, columns: Sequence[str]) -> None:
    """Append ``rows`` to ``table`` with COPY in PostgreSQL's text format (columns in ``columns`` order).

    ``rows``: one line per row, values separated by tabs, NULL as ``\\N``,
    backslash, tab, newline and carriage return in a value escaped with a
    backslash (:func:`etl.staging.staging_copy` writes it).

    Raises
    ------
    ValueError
        When ``table`` is not one of the tables loads write.
    """
    _copy(conn, rows, table, columns, "")


class CopyBehind:
    """COPYs run one at a time in a thread of their own, while the caller prepares the next rows.

    The server parses a COPY on its own core; with the COPY in a thread
    (psycopg2 lets go of the GIL while it waits on the server), the caller's
    Python goes on meanwhile. Use it as a context manager; nothing else may
    use ``conn`` until :meth:`wait` (which :meth:`rows` and the exit call).
    A failed COPY raises at the next :meth:`wait`; leaving the block on an
    error of the caller's waits for the COPY and lets the caller's error go on.
    """

    def __init__(self, conn: Connection, table: str, columns: Sequence[str]) -> None:
        self._conn, self._table, self._columns = conn, table, tuple(columns)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def rows(self, rows: str) -> None:
        """Start the COPY of ``rows`` (as :func:`copy_rows` takes them) once the last one is done."""
        self.wait()
        self._thread = threading.Thread(target=self._copy, args=(rows,), daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the COPY under way; raise its error, if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _copy(self, rows: str) -> None:
        try:
            copy_rows(self._conn, rows, self._table, self._columns)
        except BaseException as exc:  # raised in the caller's thread by wait()
            self._error = exc

    def __enter__(self) -> CopyBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.wait()
            return
        if self._thread is not None:
            self._thread.join()
        self._thread = self._error = None


def _copy(conn: Connection, data: str, table: str, columns: Sequence[str], options: str) -> None:
    if table not in _COPY_TABLES:
        raise ValueError(f"table was {table!r} but is expected to be one of {', '.join(_COPY_TABLES)}")
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the connection has no DBAPI connection to COPY through")
    cur = raw.cursor()
    try:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}", io.StringIO(data),
                        size=COPY_BLOCK)
    finally:
        cur.close()


def staged_repeats(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every staged row of each source id staged more than once: id -> rows in row order.

    Keys of a row: ``row_number``, ``source_id``, ``name``, ``lon``, ``lat``
    (degrees, WGS-84), ``address``, ``phone``, ``opening_hours``,
    ``capacity``, ``opened_on`` (date), ``kind`` and ``attrs`` (dict).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(_REPEATS).mappings():
        out.setdefault(r["source_id"], []).append(dict(r))
    return out


def staged_rows_of(conn: Connection, source_ids: Sequence[str]) -> list[dict[str, Any]]:
    """``row_number`` and ``source_id`` of the staged rows with any of ``source_ids``, in row order."""
    if not source_ids:
        return []
    return [dict(r) for r in conn.execute(_STAGED_OF, {"ids": list(source_ids)}).mappings()]


def connection_lost(conn: Connection, exc: BaseException) -> bool:
    """Whether ``exc``, raised while using ``conn``, means the connection to the server is gone."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    if conn.invalidated or conn.closed:
        return True
    raw = conn.connection.dbapi_connection if not conn.closed else None
    return raw is None or bool(getattr(raw, "closed", 0))


def drop_staged(conn: Connection, rows: Sequence[int]) -> None:
    """Remove staged rows by their file row number."""
    conn.execute(_DROP_STAGED, {"rows": list(rows)})


# ------------------------------------------------------------------ runs
def insert_run(conn: Connection, run: dict[str, Any], rejects: Sequence[dict[str, Any]], *,
               run_id: int | None = None) -> int:
    """Store a load run (with id ``run_id`` when one was reserved for it) and its rejects; returns the run id.

    ``run`` has ``layer``, ``source``, ``sha256``, ``crs``, ``status``,
    ``accepted``, ``rejected``, ``inserted``, ``updated``, ``unchanged`` and
    ``notes`` (a list of str); each reject has ``row``, ``source_id``, ``reason``.
    """
    run_id = int(conn.execute(_RUN, {**run, "id": run_id,
                                     "notes": json.dumps(run["notes"], ensure_ascii=False)}).scalar_one())
    if rejects:
        conn.execute(_REJECT, [{"run": run_id, **r} for r in rejects])
    return run_id


def set_run_counts(conn: Connection, run_id: int, *, inserted: int, updated: int, unchanged: int) -> None:
    """Record what the upsert of run ``run_id`` did."""
    conn.execute(_RUN_COUNTS, {"run": run_id, "inserted": inserted, "updated": updated, "unchanged": unchanged})


def upsert_staged(conn: Connection, layer: str, run_id: int, actor: str) -> tuple[int, int]:
    """Upsert the staged rows into ``layer`` for run ``run_id``; log each update as ``actor``.

    A row is only written when its source record changed since it was last
    loaded. Returns ``(inserted, updated)``.
    """
    conn.execute(_OLD_ROWS, {"layer": layer})
    inserted, updated = conn.execute(_UPSERT, {"layer": layer, "run": run_id}).one()
    conn.execute(_LOG_UPDATES, {"actor": actor, "run": run_id})
    return int(inserted), int(updated)


#: How long a load waits to create a new layer's partition before it gives up (the rows then go to the
#: default partition, and a later load creates it): creating one locks ``facility`` against every other load.
PARTITION_LOCK_WAIT = "100ms"
_TRY_REBUILD_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('minsheng-rebuild'), 0)")
_LOCK_NOT_AVAILABLE = "55P03"
_LOCK_TIMEOUT = text("SELECT set_config('lock_timeout', :value, true)")


def give_new_layer_its_partition(conn: Connection, layer: str) -> bool:
    """Create ``layer``'s own partition before its first rows are written; whether it was created.

    Without it a new layer's rows would go to the default partition, where
    every nearest and coverage query reads past the other layers' rows (its
    spatial index does not hold the layer). A short transaction of its own,
    before the load's: it never waits behind another load (that would
    serialise loads of different layers), it gives up instead. A layer that
    already has rows in the default partition keeps them there until a
    full reload moves them.
    """
    try:
        with conn.begin():
            if partitions.has_partition(conn, layer):
                return False
            conn.execute(_LOCK_TIMEOUT, {"value": PARTITION_LOCK_WAIT})
            if not conn.execute(_TRY_REBUILD_LOCK).scalar_one():
                return False
            if partitions.has_partition(conn, layer) or partitions.layer_rows(conn, layer):
                return False
            partitions.create_partition(conn, layer)
            return True
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            return False
        raise


# ------------------------------------------------------------------ candidate sites
def replace_candidate_set(conn: Connection, set_name: str, sites: Sequence[dict[str, Any]]) -> None:
    """Replace the candidate set ``set_name`` with ``sites``.

    Each site has ``source_id``, ``name``, ``district_adcode`` and ``wkb`` (a
    WGS-84 point as WKB hex).
    """
    conn.execute(_DELETE_SET, {"set_name": set_name})
    if sites:
        conn.execute(_INSERT_SITE, [{"set_name": set_name, **s} for s in sites])
