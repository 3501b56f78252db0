"""Editing facilities with an audit trail, and the bearer tokens that allow it.

Every edit is one transaction that locks the facility row, checks the
caller's version (optimistic concurrency: the ETag the caller read must still
be current), validates the new record with the ETL's own checks
(:func:`etl.edits.check_record`: CRS conversion to WGS-84, inside the city,
district re-assigned) on the same connection, writes it with ``version + 1``
and appends a ``change_log`` row holding who, when, and the record before and
after. The SQL is :mod:`db.editing`.

Facilities are never deleted: retiring sets ``status = 'retired'``, which
every public query filters out, while the history keeps it.

Errors are :mod:`services.errors` classes: :class:`NotFound` (no such
facility), :class:`InvalidRequest` (the ETL refuses the record; ``parameter``
names the field), :class:`Conflict` (retired, duplicate source id) and
:class:`VersionMismatch` (someone changed it since; carries the current ETag).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection, Engine

from db import editing as db_editing
from etl.edits import EditRejected, Position, check_record
from etl.validate import MAX_TEXT_CHARS
from geo.crs import POSITION_CRS
from layers import get_layer
from services.errors import Conflict, InvalidRequest, NotFound, VersionMismatch

#: Roles a token may carry, weakest first.
ROLES: tuple[str, ...] = ("viewer", "editor")
#: Text fields an edit may set, besides position (each at most :data:`MAX_TEXT_CHARS` characters).
TEXT_FIELDS: tuple[str, ...] = ("name", "address", "phone", "opening_hours", "kind")
#: Longest text of a field, characters: the ETL's limit (``etl.validate.MAX_TEXT_CHARS``).
MAX_TEXT = MAX_TEXT_CHARS
#: Longest ``source_id`` an editor may choose, characters.
MAX_SOURCE_ID = 100
#: Largest capacity an edit may set.
MAX_CAPACITY = 1_000_000
#: The systems an edit may give its position in (``geo.crs.POSITION_CRS``).
EDIT_POSITION_CRS = POSITION_CRS


# ------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class Token:
    """A token: its id, role, label (for administrators), opaque public id and expiry (never the secret)."""

    id: int
    role: str
    label: str
    public_id: str = ""
    expires_at: dt.datetime | None = None

    @property
    def actor(self) -> str:
        """How the public change log names the holder: role and opaque id, never the label."""
        return f"{self.role} {self.public_id}"

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Whether the token's expiry has passed (tokens without one never expire)."""
        return self.expires_at is not None and self.expires_at <= (now or dt.datetime.now(dt.UTC))

    def allows(self, min_role: str) -> bool:
        """Whether this token's role is ``min_role`` or stronger."""
        return ROLES.index(self.role) >= ROLES.index(min_role)


def _token(row: dict[str, Any]) -> Token:
    return Token(int(row["id"]), row["role"], row["label"], row["public_id"], row["expires_at"])


def hash_token(secret: str) -> str:
    """Hex SHA-256 of a token's secret: what the database stores."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(engine: Engine, role: str, label: str = "", *,
                 expires_at: dt.datetime | None = None) -> tuple[Token, str]:
    """Make a token for ``role`` (expiring at ``expires_at``, when given); returns the record and the secret
    (shown once, stored only hashed).

    Raises
    ------
    InvalidRequest
        When ``role`` is not one of :data:`ROLES`, or ``expires_at`` has passed.
    """
    if role not in ROLES:
        raise InvalidRequest(f"role was {role!r} but is expected to be one of {', '.join(ROLES)}",
                             parameter="role", allowed=list(ROLES))
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        raise InvalidRequest(f"expires_at was {expires_at.isoformat()} but must be in the future",
                             parameter="expires")
    secret = "msm_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        row = db_editing.insert_token(conn, hash_token(secret), role, label or "", expires_at)
    return _token(row), secret


def find_token(engine: Engine, secret: str) -> Token | None:
    """The unrevoked token whose hash matches ``secret`` (also when expired: see :meth:`Token.expired`), else None."""
    with engine.connect() as conn:
        row = db_editing.find_token(conn, hash_token(secret))
    return _token(row) if row else None


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token (id, role, label, public id, created, expires, revoked, and ``state``: live, expired or
    revoked), oldest first; never a secret or a hash."""
    with engine.connect() as conn:
        rows = db_editing.tokens(conn)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row["state"] = ("revoked" if row["revoked_at"] else "expired" if _token(row).expired(now) else "live")
    return rows


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token by id; True when one was live."""
    with engine.begin() as conn:
        return db_editing.revoke_token(conn, token_id)


# ------------------------------------------------------------------ reading
def etag(facility_id: int, version: int) -> str:
    """The strong ETag of a facility version: ``"<id>-<version>"`` (with quotes)."""
    return f'"{facility_id}-{version}"'


def get_facility(engine: Engine, facility_id: int) -> dict[str, Any]:
    """One facility, active or retired, with its ETag.

    Raises
    ------
    NotFound
    """
    with engine.connect() as conn:
        return _public(_row(conn, facility_id))


def history(engine: Engine, facility_id: int, *, with_labels: bool = False) -> dict[str, Any]:
    """A facility (also when retired), the load run that created it and every change, oldest first.

    Each change names who made it by role and opaque editor id (``actor``,
    ``role``, ``editor_id``; both None for a load). ``with_labels`` adds each
    token's id and label, for the admin view only.

    Raises
    ------
    NotFound
    """
    with engine.connect() as conn:
        row = _row(conn, facility_id)
        run = db_editing.load_run(conn, row["load_run_id"])
        changes = db_editing.changes(conn, facility_id)
    facility = _public(row)
    return {
        "facility": facility,
        "load_run": None if run is None else {k: _iso(v) for k, v in run.items()},
        "changes": [_change(c, with_labels) for c in changes],
        "synthetic_note": ("synthetic demo data, not a real facility" if facility["synthetic"] else None),
    }


def _change(row: dict[str, Any], with_labels: bool) -> dict[str, Any]:
    out = {"id": row["id"], "at": row["at"].isoformat(), "actor": row["actor"], "role": row["token_role"],
           "editor_id": row["token_public_id"], "action": row["action"], "load_run_id": row["load_run_id"],
           "before": row["before"], "after": row["after"]}
    if with_labels:
        out["token"] = None if row["token_id"] is None else {"id": row["token_id"], "label": row["token_label"]}
    return out


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A facility row as the API shows it: ISO dates, positions to 7 decimals, its ETag."""
    out = {k: _iso(v) for k, v in row.items()}
    out["lon"], out["lat"] = round(row["lon"], 7), round(row["lat"], 7)
    out["etag"] = etag(row["id"], row["version"])
    return out


def _row(conn: Connection, facility_id: int, *, lock: bool = False) -> dict[str, Any]:
    row = db_editing.facility(conn, facility_id, lock=lock)
    if row is None:
        raise NotFound(f"no facility has id {facility_id}")
    return row


# ------------------------------------------------------------------ editing
@dataclass
class Edit:
    """A set of changes, already type-checked by the caller.

    Attributes
    ----------
    values : dict
        Field -> new value for :data:`TEXT_FIELDS` (str or None),
        ``capacity`` (int or None) and ``opened_on`` (``datetime.date`` or None).
    lon, lat : float, optional
        New position in ``crs`` (degrees).
    geometry : shapely geometry, optional
        New geometry in ``crs`` (for polygon layers).
    crs : str
        One of :data:`EDIT_POSITION_CRS`; applies only to a new position.
    """

    values: dict[str, Any] = field(default_factory=dict)
    lon: float | None = None
    lat: float | None = None
    geometry: BaseGeometry | None = None
    crs: str = "wgs84"

    def position(self) -> Position | None:
        """The new position for the ETL, or None when the position stays."""
        if self.lon is None and self.geometry is None:
            return None
        return Position(self.crs, self.lon, self.lat, self.geometry)


def _checked(conn: Connection, record: dict[str, Any], edit: Edit, layer: str) -> tuple[dict[str, Any], list[str]]:
    """The record through the ETL's checks on ``conn``; a refusal names the field."""
    try:
        return check_record(conn, record, layer, edit.position())
    except EditRejected as exc:
        raise InvalidRequest(exc.message, parameter=exc.field) from None


def _wkb(rec: dict[str, Any]) -> tuple[str, str]:
    return shapely.to_wkb(rec["geom"], hex=True), shapely.to_wkb(rec["point"], hex=True)


def create_facility(engine: Engine, layer: str, edit: Edit, *, source_id: str | None, actor: str,
                    token_id: int | None = None) -> dict[str, Any]:
    """Insert a new facility after the ETL's checks; logs an ``insert`` change. One transaction.

    ``source_id`` defaults to ``admin-<random>``. The result carries the
    ETL's ``notes``. ``actor`` is logged as given (a token's
    :attr:`Token.actor`, never its label) with ``token_id``.

    Raises
    ------
    InvalidRequest
        No position, or the ETL refuses the record.
    Conflict
        Another facility of the layer has this source_id (``parameter`` source_id).
    """
    get_layer(layer)
    if edit.position() is None:
        raise InvalidRequest("a new facility needs a position: lon and lat, or geometry", parameter="lon,lat")
    record = {"source_id": source_id or f"admin-{uuid.uuid4().hex[:12]}", **edit.values}
    with engine.begin() as conn:
        rec, notes = _checked(conn, record, edit, layer)
        taken = db_editing.source_id_owner(conn, layer, record["source_id"])
        if taken is not None:
            raise Conflict(f"source_id {record['source_id']!r} is already facility {taken} in {layer}",
                           parameter="source_id")
        new_id = db_editing.insert_facility(conn, layer, record["source_id"], rec, *_wkb(rec))
        db_editing.log_change(conn, new_id, actor, "insert", None, db_editing.snapshot(conn, new_id), token_id)
        out = _public(_row(conn, new_id))
    out["notes"] = notes
    return out


def _locked(conn: Connection, facility_id: int, expected_version: int | None) -> tuple[dict[str, Any],
                                                                                      dict[str, Any]]:
    """Lock the row and check the caller's version; returns (row, audit snapshot before the change)."""
    row = _row(conn, facility_id, lock=True)
    current = etag(facility_id, row["version"])
    if expected_version is None:
        raise VersionMismatch(f"If-Match names no version of facility {facility_id}; its current ETag is "
                              f"{current}", current_etag=current, parameter="If-Match")
    if row["version"] != expected_version:
        raise VersionMismatch(
            f"facility {facility_id} is at version {row['version']} (ETag {current}), not {expected_version}: "
            "someone changed it since you read it; read it again and re-apply your edit",
            current_etag=current, parameter="If-Match")
    return row, db_editing.snapshot(conn, facility_id)


def patch_facility(engine: Engine, facility_id: int, edit: Edit, *, expected_version: int | None,
                   actor: str, token_id: int | None = None) -> dict[str, Any]:
    """Change some fields of an active facility at ``expected_version``; logs an ``update``. One transaction.

    ``expected_version`` None means the caller's If-Match named no version of
    this facility. A patch that changes nothing still succeeds and leaves the
    version as it was (``changed`` false).

    Raises
    ------
    NotFound, VersionMismatch, Conflict (retired), InvalidRequest (the ETL refuses the record)
    """
    with engine.begin() as conn:
        current, before = _locked(conn, facility_id, expected_version)
        if current["status"] != "active":
            raise Conflict(f"facility {facility_id} is retired; retired facilities are not edited")
        rec, notes = _checked(conn, {**current, **edit.values}, edit, current["layer"])
        changed = db_editing.update_facility(conn, facility_id, rec, *_wkb(rec))
        if changed:
            db_editing.log_change(conn, facility_id, actor, "update", before, db_editing.snapshot(conn, facility_id),
                                  token_id)
        out = _public(_row(conn, facility_id))
    out["notes"] = notes
    out["changed"] = changed
    return out


def retire_facility(engine: Engine, facility_id: int, *, expected_version: int | None, actor: str,
                    reason: str | None = None, token_id: int | None = None) -> dict[str, Any]:
    """Retire (never delete) a facility at ``expected_version``; logs a ``retire``. One transaction.

    Raises
    ------
    NotFound, VersionMismatch, Conflict (already retired)
    """
    with engine.begin() as conn:
        current, before = _locked(conn, facility_id, expected_version)
        if current["status"] == "retired":
            raise Conflict(f"facility {facility_id} is already retired")
        db_editing.retire_facility(conn, facility_id, reason)
        db_editing.log_change(conn, facility_id, actor, "retire", before, db_editing.snapshot(conn, facility_id),
                              token_id)
        return _public(_row(conn, facility_id))
