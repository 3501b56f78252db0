"""SQL of editing: bearer tokens, one facility row (read, locked, inserted, updated, retired), the change log.

Every function takes a :class:`~sqlalchemy.engine.Connection` inside the
caller's transaction (:mod:`services.editing` holds one per edit). Static SQL
with bound parameters only; geometries arrive as WKB hex in WGS-84 lon/lat
(EPSG:4326, bound as ``:srid``).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.crs import WGS84_EPSG

#: Columns an edit writes (besides the geometries).
WRITE_COLUMNS = ("kind", "name", "address", "phone", "opening_hours", "capacity", "opened_on", "district_adcode")

_TOKEN_COLUMNS = "id, role, label, public_id, created_at, expires_at, revoked_at"
_INSERT_TOKEN = text("INSERT INTO api_token (token_hash, role, label, expires_at) VALUES (:hash, :role, :label,"
                     f" :expires_at) RETURNING {_TOKEN_COLUMNS}")
_FIND_TOKEN = text(f"SELECT {_TOKEN_COLUMNS} FROM api_token WHERE token_hash = :hash AND revoked_at IS NULL")
_REVOKE_TOKEN = text("UPDATE api_token SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL")
_TOKENS = text(f"SELECT {_TOKEN_COLUMNS} FROM api_token ORDER BY id")

_ROW = """
SELECT f.id, f.layer, f.source_id, f.kind, f.name, f.address, f.phone, f.opening_hours, f.capacity,
       f.opened_on, f.status, f.attrs, f.district_adcode, ST_X(f.point) AS lon, ST_Y(f.point) AS lat,
       ST_AsGeoJSON(f.geom, 7)::jsonb AS geometry, f.synthetic, f.load_run_id, f.version,
       f.created_at, f.updated_at
FROM facility f WHERE f.id = :id
"""
_FACILITY = text(_ROW)
_FACILITY_LOCKED = text(_ROW + " FOR UPDATE")

#: The audit snapshot of a row: every column but the binary geometries, plus the position.
_SNAPSHOT = text(
    "SELECT (to_jsonb(f) - 'geom' - 'point') || jsonb_build_object("
    "'lon', round(ST_X(f.point)::numeric, 7), 'lat', round(ST_Y(f.point)::numeric, 7), "
    "'geometry', ST_AsGeoJSON(f.geom, 7)::jsonb) FROM facility f WHERE f.id = :id")

_SOURCE_ID_TAKEN = text("SELECT id FROM facility WHERE layer = :layer AND source_id = :source_id")

_GEOM = "ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), :srid)"
_POINT = "ST_SetSRID(ST_GeomFromWKB(decode(:point, 'hex')), :srid)"

_INSERT = text(
    "INSERT INTO facility (layer, source_id, kind, name, address, phone, opening_hours, capacity, opened_on,"
    " district_adcode, geom, point, synthetic) VALUES (:layer, :source_id, :kind, :name, :address, :phone,"
    f" :opening_hours, :capacity, :opened_on, :district_adcode, {_GEOM}, {_POINT}, false) RETURNING id")

# Only when something differs: a patch that changes nothing keeps the version.
_UPDATE = text(
    "UPDATE facility f SET kind = :kind, name = :name, address = :address, phone = :phone,"
    " opening_hours = :opening_hours, capacity = :capacity, opened_on = :opened_on,"
    f" district_adcode = :district_adcode, geom = {_GEOM}, point = {_POINT}, version = f.version + 1,"
    " updated_at = now() WHERE f.id = :id AND ((f.kind, f.name, f.address, f.phone, f.opening_hours,"
    " f.capacity, f.opened_on, f.district_adcode) IS DISTINCT FROM (:kind, :name, :address, :phone,"
    " :opening_hours, CAST(:capacity AS integer), CAST(:opened_on AS date), :district_adcode)"
    f" OR NOT ST_Equals(f.geom, {_GEOM}))")

_RETIRE = text(
    "UPDATE facility SET status = 'retired', retired_on = current_date, version = version + 1, updated_at = now(),"
    " attrs = CASE WHEN CAST(:reason AS text) IS NULL THEN attrs"
    " ELSE attrs || jsonb_build_object('retired_reason', CAST(:reason AS text)) END WHERE id = :id")

_LOG = text("INSERT INTO change_log (facility_id, actor, action, before, after, token_id) "
            "VALUES (:id, :actor, :action, CAST(:before AS jsonb), CAST(:after AS jsonb), :token_id)")

_LOAD_RUN = text(
    "SELECT id, layer, source_name, sha256, crs, status, started_at, finished_at, accepted, rejected,"
    " inserted, updated, unchanged FROM load_run WHERE id = :id")

_CHANGES = text("SELECT c.id, c.at, c.actor, c.action, c.before, c.after, c.load_run_id, c.token_id,"
                " t.role AS token_role, t.public_id AS token_public_id, t.label AS token_label"
                " FROM change_log c LEFT JOIN api_token t ON t.id = c.token_id"
                " WHERE c.facility_id = :id ORDER BY c.at, c.id")


# ------------------------------------------------------------------ tokens
def insert_token(conn: Connection, token_hash: str, role: str, label: str,
                 expires_at: dt.datetime | None = None) -> dict[str, Any]:
    """Store a token by its hash; returns its row (``id``, ``role``, ``label``, ``public_id``, times)."""
    params = {"hash": token_hash, "role": role, "label": label, "expires_at": expires_at}
    return dict(conn.execute(_INSERT_TOKEN, params).mappings().one())


def find_token(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """The row of the unrevoked token with this hash (also when expired: the caller says so), else None."""
    row = conn.execute(_FIND_TOKEN, {"hash": token_hash}).mappings().first()
    return dict(row) if row else None


def tokens(conn: Connection) -> list[dict[str, Any]]:
    """Every token's row (never its hash), oldest first: revoked and expired ones too."""
    return [dict(r) for r in conn.execute(_TOKENS).mappings()]


def revoke_token(conn: Connection, token_id: int) -> bool:
    """Revoke a token by id; True when one was live."""
    return int(conn.execute(_REVOKE_TOKEN, {"id": token_id}).rowcount) == 1


# ------------------------------------------------------------------ one facility
def facility(conn: Connection, facility_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """The facility's row (active or retired), with ``lon``/``lat`` (WGS-84) and ``geometry`` (GeoJSON).

    ``lock`` takes a row lock until the transaction ends (for an edit).
    """
    row = conn.execute(_FACILITY_LOCKED if lock else _FACILITY, {"id": facility_id}).mappings().first()
    return dict(row) if row else None


def snapshot(conn: Connection, facility_id: int) -> dict[str, Any]:
    """What the change log keeps of a row: every column but the binary geometries, plus the position."""
    return dict(conn.execute(_SNAPSHOT, {"id": facility_id}).scalar_one())


def source_id_owner(conn: Connection, layer: str, source_id: str) -> int | None:
    """The id of the facility of ``layer`` with ``source_id``, if there is one."""
    found = conn.execute(_SOURCE_ID_TAKEN, {"layer": layer, "source_id": source_id}).scalar()
    return None if found is None else int(found)


def insert_facility(conn: Connection, layer: str, source_id: str, values: dict[str, Any], geom_wkb: str,
                    point_wkb: str) -> int:
    """Insert an active, non-synthetic facility; ``values`` holds :data:`WRITE_COLUMNS`. Returns its id."""
    params = {**{c: values.get(c) for c in WRITE_COLUMNS}, "layer": layer, "source_id": source_id,
              "geom": geom_wkb, "point": point_wkb, "srid": WGS84_EPSG}
    return int(conn.execute(_INSERT, params).scalar_one())


def update_facility(conn: Connection, facility_id: int, values: dict[str, Any], geom_wkb: str,
                    point_wkb: str) -> bool:
    """Write :data:`WRITE_COLUMNS` and the geometries, bumping the version, only if anything differs.

    Returns whether the row changed.
    """
    params = {**{c: values.get(c) for c in WRITE_COLUMNS}, "id": facility_id, "geom": geom_wkb,
              "point": point_wkb, "srid": WGS84_EPSG}
    return int(conn.execute(_UPDATE, params).rowcount) == 1


def retire_facility(conn: Connection, facility_id: int, reason: str | None) -> None:
    """Set the facility retired (never deleted), bump its version, keep ``reason`` in its attributes."""
    conn.execute(_RETIRE, {"id": facility_id, "reason": reason})


# ------------------------------------------------------------------ history
def log_change(conn: Connection, facility_id: int, actor: str, action: str, before: dict[str, Any] | None,
               after: dict[str, Any], token_id: int | None = None) -> None:
    """Append a change-log row: who (``actor``, and the token when a token made it), what, and the snapshots
    before (None for an insert) and after."""
    conn.execute(_LOG, {"id": facility_id, "actor": actor, "action": action, "token_id": token_id,
                        "before": None if before is None else json.dumps(before, ensure_ascii=False),
                        "after": json.dumps(after, ensure_ascii=False)})


def load_run(conn: Connection, run_id: int | None) -> dict[str, Any] | None:
    """The load run with this id (source, hash, CRS, status, counts, times), if any."""
    if run_id is None:
        return None
    row = conn.execute(_LOAD_RUN, {"id": run_id}).mappings().first()
    return dict(row) if row else None


def changes(conn: Connection, facility_id: int) -> list[dict[str, Any]]:
    """Every change-log row of a facility, oldest first, with the role, public id and label of the token that
    made it (None for loads)."""
    return [dict(r) for r in conn.execute(_CHANGES, {"id": facility_id}).mappings()]
