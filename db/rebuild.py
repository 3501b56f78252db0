"""SQL of a full reload of one layer: built in a fresh table, indexed in parallel, swapped in.

A load that writes a large share of its layer (:func:`worth_rebuilding`) does
not upsert in place. Its steps span two transactions of the load's
connection, with the index builds between them on connections of their own:

1. in the load's transaction, after staging: :func:`hold` (session-level
   locks: the layer's load lock and the rebuild lock, held until
   :func:`release`), :func:`reserve_run_id`, :func:`fill_fresh` (the layer's
   current rows, updated and new source records, into
   ``facility__<layer>__fresh``); the commit makes the fresh table visible to
   other connections (never to readers of ``facility``: it is not attached);
2. :func:`db.partitions.index_fresh` builds its indexes, several at once;
3. the swap transaction: the load run, :func:`log_updates`, then
   :func:`db.partitions.swap_in`; readers see the old rows until it commits;
4. :func:`release`, whatever happened: a fresh table that was not swapped in
   is dropped, and the locks let go.

A crash between 1 and 4 leaves the fresh table behind (the locks die with the
session); the next rebuild of the layer drops it before it builds its own
(:func:`db.partitions.create_fresh`). SQL is static with bound parameters; the
fresh table's name is quoted by the server (:func:`db.partitions.formatted`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from db import partitions
from db.loading import SOURCE_HASH

#: A full reload is built in a fresh partition when it writes at least this many rows and at least
#: this share of the layer's rows; smaller changes are upserted in place (:func:`db.loading.upsert_staged`).
REBUILD_MIN_ROWS = 20_000
REBUILD_MIN_SHARE = 0.2

# The two advisory locks a rebuild holds: the layer's load lock (as db.loading.lock_layer) and the one
# rebuild lock (two swaps at once would each wait for the other's hold on facility).
_KEYS = "SELECT hashtext('minsheng-load') AS k1, hashtext(:layer) AS k2, hashtext('minsheng-rebuild') AS r1"
_REBUILD_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('minsheng-rebuild'), 0)")
_HOLD = text(f"SELECT pg_advisory_lock(k.k1, k.k2), pg_advisory_lock(k.r1, 0) FROM ({_KEYS}) k")
_LET_GO = text(f"SELECT pg_advisory_unlock(k.r1, 0), pg_advisory_unlock(k.k1, k.k2) FROM ({_KEYS}) k")
_TRY_LAYER = text("SELECT pg_try_advisory_xact_lock(hashtext('minsheng-load'), hashtext(:layer))")

_STAGED_COUNT = text("SELECT count(*) FROM staging")

#: Staged rows that would be written: new source ids, and ids whose source record changed.
_TO_WRITE = text(f"""
SELECT count(*) FROM staging s LEFT JOIN facility f ON f.layer = :layer AND f.source_id = s.source_id
WHERE f.id IS NULL OR f.source_hash IS DISTINCT FROM {SOURCE_HASH}
""")

_RESERVE_RUN_ID = text("SELECT nextval(pg_get_serial_sequence('load_run', 'id'))")

# Into the fresh table of the layer (%I: its name, quoted by the server). The same rule as the
# upsert: a row is rewritten only when its source record changed; every other column of a kept row
# (an editor's retirement, columns this module does not know) is carried over as it is.
_FRESH_COPY = "INSERT INTO %I SELECT * FROM facility WHERE layer = :layer"
_FRESH_UPDATE = f"""
UPDATE %I AS f SET
    kind = s.kind, name = s.name, address = s.address, phone = s.phone, opening_hours = s.opening_hours,
    capacity = s.capacity, opened_on = s.opened_on, attrs = s.attrs, district_adcode = s.district_adcode,
    geom = ST_SetSRID(s.geom, 4326), point = ST_SetSRID(coalesce(s.point, s.geom), 4326), synthetic = s.synthetic,
    load_run_id = :run, source_hash = s.source_hash, version = f.version + 1, updated_at = now()
FROM (SELECT s.*, {SOURCE_HASH} AS source_hash FROM staging s) s
WHERE f.source_id = s.source_id AND f.source_hash IS DISTINCT FROM s.source_hash
"""
_FRESH_INSERT = f"""
INSERT INTO %I (layer, source_id, kind, name, address, phone, opening_hours, capacity, opened_on,
                attrs, district_adcode, geom, point, synthetic, load_run_id, source_hash)
SELECT :layer, s.source_id, s.kind, s.name, s.address, s.phone, s.opening_hours, s.capacity, s.opened_on,
       s.attrs, s.district_adcode, ST_SetSRID(s.geom, 4326),
       ST_SetSRID(coalesce(s.point, s.geom), 4326), s.synthetic, :run,
       {SOURCE_HASH}
FROM staging s
"""
_FRESH_INSERT_NEW = _FRESH_INSERT + " WHERE NOT EXISTS (SELECT 1 FROM %I f WHERE f.source_id = s.source_id)"

#: Each row the run rewrote, before (the live partition, not yet swapped) and after (the fresh table).
_LOG_UPDATES = """
INSERT INTO change_log (facility_id, actor, action, before, after, load_run_id)
SELECT f.id, :actor, 'load', to_jsonb(o) - 'geom' - 'point', to_jsonb(f) - 'geom' - 'point', :run
FROM %I f JOIN facility o ON o.layer = :layer AND o.id = f.id
WHERE f.load_run_id = :run AND f.version <> o.version
"""


def worth_rebuilding(conn: Connection, layer: str) -> bool:
    """Whether writing the staged rows into ``layer`` is cheaper in a fresh partition than in place.

    Yes when the rows to write (new, or changed at the source) number at
    least :data:`REBUILD_MIN_ROWS` and :data:`REBUILD_MIN_SHARE` of the
    layer. Small loads never rebuild (a new layer's first rows go to the
    default partition). Before it reads ``facility`` to decide, a load that
    may rebuild waits for any other such load, whatever its layer: two swaps
    at once would each wait for the other's hold on ``facility``.
    """
    if int(conn.execute(_STAGED_COUNT).scalar_one()) < REBUILD_MIN_ROWS:
        return False
    conn.execute(_REBUILD_LOCK)
    existing = partitions.layer_rows(conn, layer)
    if existing == 0:
        return True
    to_write = int(conn.execute(_TO_WRITE, {"layer": layer}).scalar_one())
    return to_write >= max(REBUILD_MIN_ROWS, REBUILD_MIN_SHARE * existing)


def hold(conn: Connection, layer: str) -> None:
    """Take the layer's load lock and the rebuild lock for the session, so they outlive the commit
    that makes the fresh table visible. Granted at once to a load that holds them for its
    transaction already; :func:`release` lets go of them (and a lost connection does)."""
    conn.execute(_HOLD, {"layer": layer})


def reserve_run_id(conn: Connection) -> int:
    """An id for the load run, taken before the run is recorded (the fresh rows carry it)."""
    return int(conn.execute(_RESERVE_RUN_ID).scalar_one())


def fill_fresh(conn: Connection, layer: str, run_id: int) -> tuple[int, int]:
    """Write the staged rows as :func:`db.loading.upsert_staged` would, into a fresh table of ``layer``.

    The fresh table (:func:`db.partitions.create_fresh`) gets the layer's
    current rows, changed source records updated, new ones inserted, all
    marked with ``run_id``. Facility ids stay what they were. Returns
    ``(inserted, updated)``.
    """
    fresh = partitions.create_fresh(conn, layer)
    params = {"layer": layer, "run": run_id}
    if not partitions.layer_rows(conn, layer):
        return _on(conn, _FRESH_INSERT, [fresh], params), 0
    _on(conn, _FRESH_COPY, [fresh], params)
    updated = _on(conn, _FRESH_UPDATE, [fresh], params)
    inserted = _on(conn, _FRESH_INSERT_NEW, [fresh, fresh], params)
    return inserted, updated


def log_updates(conn: Connection, layer: str, run_id: int, actor: str) -> None:
    """Log each row of ``layer`` that run ``run_id`` rewrote in the fresh table, as ``actor``.

    Runs before the swap, while the live partition still holds the rows as they were.
    """
    _on(conn, _LOG_UPDATES, [partitions.fresh_name(layer)], {"layer": layer, "run": run_id, "actor": actor})


def release(conn: Connection, layer: str) -> None:
    """Drop ``layer``'s fresh table if it was not swapped in, and let go of the locks of :func:`hold`.

    On the load's own connection when it still answers (rolling back what is
    left of a transaction); else on a new one, and only when no other load
    holds the layer (a new load of it owns any fresh table it finds). A table
    that cannot be dropped now is dropped by the next rebuild of the layer.
    """
    if not (conn.invalidated or conn.closed):
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                partitions.drop_fresh(conn, layer)
                conn.execute(_LET_GO, {"layer": layer})
            return
        except DBAPIError:
            conn.invalidate()  # closing the session is what lets go of its locks now
    try:
        with conn.engine.connect() as other, other.begin():
            if other.execute(_TRY_LAYER, {"layer": layer}).scalar_one():
                partitions.drop_fresh(other, layer)
    except DBAPIError:
        pass  # the database is not answering: the next rebuild of the layer drops the table


def _on(conn: Connection, template: str, tables: list[str], params: dict[str, Any]) -> int:
    """Run ``template`` with its ``%I`` names filled in by the server and ``params`` bound; rows affected."""
    return int(conn.execute(text(partitions.formatted(conn, template, *tables)), params).rowcount)
