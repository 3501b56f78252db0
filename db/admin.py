"""Editing facilities with an audit trail, and the bearer tokens that allow it.

Every edit runs in one transaction that locks the facility row, checks the
caller's version (optimistic concurrency: the ETag the caller read must still
be current), validates the new record with the ETL's own functions
(:func:`etl.normalise.normalise`, :func:`etl.validate.validate`,
:func:`etl.load.assign_districts`: CRS conversion to WGS-84, inside the city,
district re-assigned), writes it with ``version + 1`` and appends a
``change_log`` row holding who, when, and the record before and after.

Facilities are never deleted: retiring sets ``status = 'retired'``, which
every public query filters out, while the history keeps it.

SQL uses bound parameters only.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from layers import get_layer

#: Roles a token may carry, weakest first.
ROLES = ("viewer", "editor")
#: Source CRS an edit may give its lon/lat (or geometry) in.
EDIT_CRS = ("wgs84", "gcj02", "bd09")
#: Text fields an edit may set, besides position.
TEXT_FIELDS = ("name", "address", "phone", "opening_hours", "kind")


class AdminError(Exception):
    """Base of the editing errors; ``parameter`` names the offending field."""

    def __init__(self, message: str, *, parameter: str | None = None, allowed=None):
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.allowed = allowed


class FacilityNotFound(AdminError):
    """No facility has that id."""


class VersionMismatch(AdminError):
    """The caller's version (from If-Match) is not the current one."""

    def __init__(self, message: str, *, current_etag: str):
        super().__init__(message)
        self.current_etag = current_etag


class InvalidEdit(AdminError):
    """The edited record fails the ETL's validation."""


class AlreadyRetired(AdminError):
    """The facility is retired; it cannot be retired or edited again."""


class DuplicateSourceId(AdminError):
    """Another facility of the layer already has this source_id."""


# --- tokens -----------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """A live token: its id, role and label (never the secret)."""

    id: int
    role: str
    label: str

    @property
    def actor(self) -> str:
        """How the change log names the person holding this token."""
        return f"token {self.id} ({self.role}{': ' + self.label if self.label else ''})"


def hash_token(token: str) -> str:
    """Hex SHA-256 of ``token``: what the database stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, role: str, label: str = "") -> tuple[Token, str]:
    """Make a token for ``role``; returns the record and the secret (shown once).

    Raises
    ------
    ValueError
        When ``role`` is not one of :data:`ROLES`.
    """
    if role not in ROLES:
        raise ValueError(f"role was {role!r} but is expected to be one of {', '.join(ROLES)}")
    secret = "msm_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        tid = conn.execute(text("INSERT INTO api_token (token_hash, role, label) VALUES (:h, :r, :l) RETURNING id"),
                           {"h": hash_token(secret), "r": role, "l": label or ""}).scalar_one()
    return Token(int(tid), role, label or ""), secret


def find_token(engine: Engine, secret: str) -> Token | None:
    """The live (not revoked) token whose hash matches ``secret``, else None."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, role, label FROM api_token WHERE token_hash = :h "
                                "AND revoked_at IS NULL"), {"h": hash_token(secret)}).first()
    return Token(int(row.id), row.role, row.label) if row else None


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token by id; True when one was live."""
    with engine.begin() as conn:
        n = conn.execute(text("UPDATE api_token SET revoked_at = now() WHERE id = :i AND revoked_at IS NULL"),
                         {"i": token_id}).rowcount
    return n == 1


# --- reading ----------------------------------------------------------------

def etag(facility_id: int, version: int) -> str:
    """The strong ETag of a facility version: ``"<id>-<version>"`` (with quotes)."""
    return f'"{facility_id}-{version}"'


_ROW = """
SELECT f.id, f.layer, f.source_id, f.kind, f.name, f.address, f.phone, f.opening_hours, f.capacity,
       f.opened_on, f.status, f.attrs, f.district_adcode, ST_X(f.point) AS lon, ST_Y(f.point) AS lat,
       ST_AsGeoJSON(f.geom, 7)::jsonb AS geometry, f.synthetic, f.load_run_id, f.version,
       f.created_at, f.updated_at
FROM facility f WHERE f.id = :id
"""

#: The audit snapshot of a row: every column but the binary geometries, plus the position.
_SNAPSHOT = ("(to_jsonb(f) - 'geom' - 'point') || jsonb_build_object("
             "'lon', round(ST_X(f.point)::numeric, 7), 'lat', round(ST_Y(f.point)::numeric, 7), "
             "'geometry', ST_AsGeoJSON(f.geom, 7)::jsonb)")


def _as_dict(row) -> dict:
    out = dict(row._mapping)
    for key in ("created_at", "updated_at"):
        out[key] = out[key].isoformat()
    out["opened_on"] = out["opened_on"].isoformat() if out["opened_on"] else None
    out["lon"], out["lat"] = round(out["lon"], 7), round(out["lat"], 7)
    out["etag"] = etag(out["id"], out["version"])
    return out


def _row(conn, facility_id: int):
    """The facility's row (active or retired); FacilityNotFound when there is none."""
    row = conn.execute(text(_ROW), {"id": facility_id}).first()
    if row is None:
        raise FacilityNotFound(f"no facility has id {facility_id}")
    return row


def get_facility(engine: Engine, facility_id: int) -> dict:
    """One facility, active or retired, with its ETag.

    Raises
    ------
    FacilityNotFound
    """
    with engine.connect() as conn:
        return _as_dict(_row(conn, facility_id))


def history(engine: Engine, facility_id: int) -> dict:
    """A facility (also when retired), the load run that created it and every change, oldest first.

    Raises
    ------
    FacilityNotFound
    """
    with engine.connect() as conn:
        row = _row(conn, facility_id)
        run = conn.execute(text(
            "SELECT id, layer, source_name, sha256, crs, status, started_at, finished_at, accepted, rejected, "
            "inserted, updated, unchanged FROM load_run WHERE id = :r"), {"r": row.load_run_id}).first()
        changes = conn.execute(text(
            "SELECT id, at, actor, action, before, after, load_run_id FROM change_log "
            "WHERE facility_id = :id ORDER BY at, id"), {"id": facility_id}).all()
    facility = _as_dict(row)
    load_run = None
    if run is not None:
        load_run = dict(run._mapping)
        for key in ("started_at", "finished_at"):
            load_run[key] = load_run[key].isoformat() if load_run[key] else None
    return {
        "facility": facility,
        "load_run": load_run,
        "changes": [{"id": c.id, "at": c.at.isoformat(), "actor": c.actor, "action": c.action,
                     "load_run_id": c.load_run_id, "before": c.before, "after": c.after} for c in changes],
        "synthetic_note": ("synthetic demo data, not a real facility" if facility["synthetic"] else None),
    }


# --- validation through the ETL ---------------------------------------------

@dataclass
class Edit:
    """A checked set of changes (types already checked by the web layer).

    Attributes
    ----------
    values : dict
        Field -> new value for ``name``, ``address``, ``phone``,
        ``opening_hours``, ``kind``, ``capacity`` (int or None), ``opened_on``
        (``datetime.date`` or None).
    lon, lat : float, optional
        New position in ``crs`` (degrees).
    geometry : shapely geometry, optional
        New geometry in ``crs`` (for polygon layers).
    crs : str
        One of :data:`EDIT_CRS`.
    """

    values: dict = field(default_factory=dict)
    lon: float | None = None
    lat: float | None = None
    geometry: BaseGeometry | None = None
    crs: str = "wgs84"


def _raw_table(record: dict, edit: Edit, layer: str):
    """One-row :class:`etl.read.RawTable` holding the merged record, as a file would."""
    from etl.read import RawTable

    def cell(v):
        if v is None:
            return None
        return v.isoformat() if isinstance(v, dt.date) else str(v)

    cols = {"id": record["source_id"], "name": record.get("name"), "address": record.get("address"),
            "phone": record.get("phone"), "opening_hours": record.get("opening_hours"),
            "capacity": record.get("capacity"), "opened_on": record.get("opened_on"),
            "kind": record.get("kind")}
    geometry = None
    if edit.geometry is not None:
        geometry = [edit.geometry]
    elif edit.lon is not None:
        cols["lon"], cols["lat"] = edit.lon, edit.lat
    else:  # position unchanged: the stored WGS-84 geometry
        geometry = [shapely.from_geojson(json.dumps(record["geometry"]))]
    frame = pd.DataFrame({k: [cell(v)] for k, v in cols.items()}, dtype=object)
    return RawTable(frame=frame, geometry=geometry, crs=None, encoding=None, format="edit", row_numbers=[1])


def _crs_for(edit: Edit) -> str:
    return edit.crs if (edit.lon is not None or edit.geometry is not None) else "wgs84"


def validate_record(engine: Engine, record: dict, edit: Edit, layer: str) -> tuple[dict, list[str]]:
    """Run the merged record through the ETL: normalise, validate, assign district.

    Returns the accepted record (``geom``, ``point`` WGS-84 shapely,
    ``district_adcode``) and the ETL's notes (e.g. swapped lon/lat fixed).

    Raises
    ------
    InvalidEdit
        Naming the field and the ETL's reason (outside the city, wrong geometry...).
    """
    from etl.errors import ETLError
    from etl.load import assign_districts, city_and_districts
    from etl.normalise import normalise
    from etl.validate import validate

    position = "geometry" if edit.geometry is not None else "lon,lat"
    try:
        norm = normalise(_raw_table(record, edit, layer), layer, crs=_crs_for(edit))
    except ETLError as exc:
        raise InvalidEdit(str(exc), parameter=position) from None
    if norm.rejects:
        raise InvalidEdit(norm.rejects[0].reason, parameter=position)
    with engine.connect() as conn:
        city, codes, polys = city_and_districts(conn)
    checked = validate(norm.records, layer, city)
    if checked.rejects or not checked.accepted:
        reason = checked.rejects[0].reason if checked.rejects else "the record was not accepted"
        parameter = ("name" if reason.startswith("name") else "capacity" if reason.startswith("capacity")
                     else position)
        raise InvalidEdit(reason, parameter=parameter)
    rec = checked.accepted[0]
    rec["district_adcode"] = assign_districts(np.array([rec["point"]], dtype=object), codes, polys)[0]
    if record.get("opened_on") is not None and rec.get("opened_on") is None:
        rec["opened_on"] = record["opened_on"]
    notes = [n for n in norm.notes + checked.notes if not n.startswith(("CRS ", "coordinates", "columns"))]
    return rec, notes


# --- writing ----------------------------------------------------------------

def _log(conn: Connection, facility_id: int, actor: str, action: str, before: dict | None) -> dict:
    after = conn.execute(text(f"SELECT {_SNAPSHOT} FROM facility f WHERE f.id = :id"),
                         {"id": facility_id}).scalar_one()
    conn.execute(text("INSERT INTO change_log (facility_id, actor, action, before, after) "
                      "VALUES (:id, :actor, :action, CAST(:before AS jsonb), CAST(:after AS jsonb))"),
                 {"id": facility_id, "actor": actor, "action": action,
                  "before": None if before is None else json.dumps(before, ensure_ascii=False),
                  "after": json.dumps(after, ensure_ascii=False)})
    return after


def _locked(conn: Connection, facility_id: int, expected_version: int) -> tuple[dict, dict]:
    """Lock the row and check the caller's version; returns (row as dict, audit snapshot)."""
    row = conn.execute(text(_ROW + " FOR UPDATE"), {"id": facility_id}).first()
    if row is None:
        raise FacilityNotFound(f"no facility has id {facility_id}")
    current = _as_dict(row)
    if current["version"] != expected_version:
        raise VersionMismatch(
            f"facility {facility_id} is at version {current['version']} (ETag {current['etag']}), not "
            f"{expected_version}: someone changed it since you read it; read it again and re-apply your edit",
            current_etag=current["etag"])
    snapshot = conn.execute(text(f"SELECT {_SNAPSHOT} FROM facility f WHERE f.id = :id"),
                            {"id": facility_id}).scalar_one()
    return current, snapshot


_WRITE_COLUMNS = ("kind", "name", "address", "phone", "opening_hours", "capacity", "opened_on", "district_adcode")


def _params(rec: dict) -> dict:
    params = {c: rec.get(c) for c in _WRITE_COLUMNS}
    params["geom"] = shapely.to_wkb(rec["geom"], hex=True)
    params["point"] = shapely.to_wkb(rec["point"], hex=True)
    return params


def create_facility(engine: Engine, layer: str, edit: Edit, *, source_id: str | None, actor: str) -> dict:
    """Insert a new facility after ETL validation; logs an ``insert`` change.

    Raises
    ------
    InvalidEdit, DuplicateSourceId
    """
    get_layer(layer)
    if edit.lon is None and edit.geometry is None:
        raise InvalidEdit("a new facility needs a position: lon and lat, or geometry", parameter="lon,lat")
    record = {"source_id": source_id or f"admin-{uuid.uuid4().hex[:12]}", **edit.values}
    rec, notes = validate_record(engine, record, edit, layer)
    with engine.begin() as conn:
        taken = conn.execute(text("SELECT id FROM facility WHERE layer = :l AND source_id = :s"),
                             {"l": layer, "s": record["source_id"]}).scalar()
        if taken is not None:
            raise DuplicateSourceId(f"source_id {record['source_id']!r} is already facility {taken} in {layer}",
                                    parameter="source_id")
        params = _params(rec)
        params.update(layer=layer, source_id=record["source_id"])
        new_id = conn.execute(text(
            "INSERT INTO facility (layer, source_id, kind, name, address, phone, opening_hours, capacity, "
            "opened_on, district_adcode, geom, point, synthetic) VALUES (:layer, :source_id, :kind, :name, "
            ":address, :phone, :opening_hours, :capacity, :opened_on, :district_adcode, "
            "ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), 4326), "
            "ST_SetSRID(ST_GeomFromWKB(decode(:point, 'hex')), 4326), false) RETURNING id"),
            params).scalar_one()
        _log(conn, new_id, actor, "insert", None)
        out = _as_dict(conn.execute(text(_ROW), {"id": new_id}).first())
    out["notes"] = notes
    return out


def patch_facility(engine: Engine, facility_id: int, edit: Edit, *, expected_version: int, actor: str) -> dict:
    """Change some fields of an active facility at ``expected_version``; logs an ``update``.

    A patch that changes nothing still succeeds and leaves the version as it was.

    Raises
    ------
    FacilityNotFound, VersionMismatch, AlreadyRetired, InvalidEdit
    """
    with engine.begin() as conn:
        current, before = _locked(conn, facility_id, expected_version)
        if current["status"] != "active":
            raise AlreadyRetired(f"facility {facility_id} is retired; retired facilities are not edited")
        record = {**current, **edit.values}
        if isinstance(record.get("opened_on"), str):
            record["opened_on"] = dt.date.fromisoformat(record["opened_on"])
        rec, notes = validate_record(engine, record, edit, current["layer"])
        params = _params(rec)
        params["id"] = facility_id
        changed = conn.execute(text(
            "UPDATE facility f SET kind = :kind, name = :name, address = :address, phone = :phone, "
            "opening_hours = :opening_hours, capacity = :capacity, opened_on = :opened_on, "
            "district_adcode = :district_adcode, geom = ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), 4326), "
            "point = ST_SetSRID(ST_GeomFromWKB(decode(:point, 'hex')), 4326), version = f.version + 1, "
            "updated_at = now() WHERE f.id = :id AND ((f.kind, f.name, f.address, f.phone, f.opening_hours, "
            "f.capacity, f.opened_on, f.district_adcode) IS DISTINCT FROM (:kind, :name, :address, :phone, "
            ":opening_hours, CAST(:capacity AS integer), CAST(:opened_on AS date), :district_adcode) "
            "OR NOT ST_Equals(f.geom, ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), 4326)))"),
            params).rowcount
        if changed:
            _log(conn, facility_id, actor, "update", before)
        out = _as_dict(conn.execute(text(_ROW), {"id": facility_id}).first())
    out["notes"] = notes
    out["changed"] = bool(changed)
    return out


def retire_facility(engine: Engine, facility_id: int, *, expected_version: int, actor: str,
                    reason: str | None = None) -> dict:
    """Retire (never delete) a facility at ``expected_version``; logs a ``retire``.

    Raises
    ------
    FacilityNotFound, VersionMismatch, AlreadyRetired
    """
    with engine.begin() as conn:
        current, before = _locked(conn, facility_id, expected_version)
        if current["status"] == "retired":
            raise AlreadyRetired(f"facility {facility_id} is already retired")
        conn.execute(text(
            "UPDATE facility SET status = 'retired', version = version + 1, updated_at = now(), "
            "attrs = CASE WHEN CAST(:reason AS text) IS NULL THEN attrs "
            "ELSE attrs || jsonb_build_object('retired_reason', CAST(:reason AS text)) END WHERE id = :id"),
            {"id": facility_id, "reason": reason})
        _log(conn, facility_id, actor, "retire", before)
        return _as_dict(conn.execute(text(_ROW), {"id": facility_id}).first())
