"""One source id twice in a file: a repeat, another facility, or a conflict nobody can settle.

The one duplicate rule of the loader, used within a piece of a file
(:func:`etl.validate.validate`) and across the pieces a large file is read in
(:func:`collapse_repeats`, driven by :mod:`etl.load`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pyproj import Geod

from etl.errors import Reject

#: Two records with one source_id further apart than this (metres, geodesic
#: on WGS-84) are different facilities, not a repeated row.
DUPLICATE_DISTANCE_M = 50.0
#: Fields compared when one source_id comes twice with one name (the position has its own rule).
COMPARED_FIELDS = ("address", "phone", "opening_hours", "capacity", "opened_on", "kind", "attrs")
#: Other columns left out of that comparison: running numbers that differ on every row.
ROW_COUNTER_COLUMNS = frozenset({"序号", "行号", "序", "no", "no.", "#", "index", "fid", "objectid", "ogc_fid"})
#: How the reason for a conflicting pair of records begins.
CONFLICT_PREFIX = "conflicting records:"
_GEOD = Geod(ellps="WGS84")


@dataclass
class Seen:
    """The first record of a source_id (and whether the id turned out to be in conflict)."""

    row: int | None
    name: object
    lon: float
    lat: float
    values: tuple = ()
    conflict: str | None = None


def row_label(rec: dict) -> str:
    """``row 12 (SO7)``: how notes and reasons name a record."""
    sid = rec.get("source_id")
    return f"row {rec.get('row')}" + (f" ({sid})" if sid else "")


def collapse_duplicates(candidates: list[dict], rejects: list[Reject], notes: list[str],
                        first: dict[str, Seen] | None = None) -> list[dict]:
    """One record per source_id: repeats collapse, conflicts are rejected.

    A later record with the same source_id, the same name, a position within
    :data:`DUPLICATE_DISTANCE_M` and the same :data:`COMPARED_FIELDS` is the
    same facility typed twice (a note). Another name or a position farther
    away is another facility reusing the id: the later row is rejected,
    naming the earlier one. The same name and place with other values is a
    conflict nobody can settle here: both rows (and any later one with that
    id) are rejected, naming both lines and the fields that differ, so no
    guess is loaded. The first row is withdrawn only from this call's
    records; an earlier call's records are the caller's.

    ``first`` maps each source_id seen so far (by earlier calls too) to its
    :class:`Seen`, and is updated. Without it only the ids this call sees
    more than once are tracked (the common case of a file whose ids are
    unique costs one count), in a dict of this call's own.
    """
    repeated: set | None = None
    if first is None:
        counts = Counter(rec.get("source_id") for rec in candidates)
        repeated = {sid for sid, n in counts.items() if n > 1 and sid is not None}
        if not repeated:
            return candidates
        first = {}
    kept: list[dict | None] = []
    here: dict[str, int] = {}  # source_id -> index in kept, for ids first seen in this call
    for rec in candidates:
        sid = rec.get("source_id")
        if repeated is not None and sid not in repeated:
            kept.append(rec)
            continue
        earlier = first.get(sid) if sid is not None else None
        if earlier is None:
            if sid is not None:
                first[sid] = Seen(rec.get("row"), rec.get("name"), rec["point"].x, rec["point"].y, _values(rec))
                here[sid] = len(kept)
            kept.append(rec)
            continue
        problem = earlier.conflict or duplicate_conflict(earlier, rec)
        if problem is None:
            problem = _differing(earlier, rec)
            if problem is not None:  # no guess: the first row goes too
                earlier.conflict = problem
                index = here.pop(str(sid), None)
                if index is not None:
                    kept[index] = None
                    rejects.append(Reject(earlier.row, sid, problem))
        if problem is None:
            notes.append(f"{row_label(rec)} repeats row {earlier.row}; loaded once")
        else:
            rejects.append(Reject(rec.get("row"), sid, problem))
    return [rec for rec in kept if rec is not None]


def conflicts_of(rejects: list[Reject]) -> dict[str, str]:
    """Source id -> reason of the ids refused as conflicting records (every row of such an id goes)."""
    return {r.source_id: r.reason for r in rejects
            if r.source_id is not None and r.reason.startswith(CONFLICT_PREFIX)}


def collapse_repeats(records: list[dict]) -> tuple[list[dict], list[Reject], list[str]]:
    """The duplicate rule of :func:`validate` on records that share source ids, in row order.

    Each record needs ``row``, ``source_id``, ``name``, ``point`` (shapely,
    WGS-84) and the :data:`COMPARED_FIELDS`. Returns the records kept, the
    rejects and the notes, as :func:`validate` decides them within one call:
    the way a load read in pieces settles ids repeated across pieces.
    """
    rejects: list[Reject] = []
    notes: list[str] = []
    kept = collapse_duplicates(records, rejects, notes)
    return kept, rejects, notes


def _values(rec: dict) -> tuple:
    attrs = {k: v for k, v in (rec.get("attrs") or {}).items() if str(k).strip().lower() not in ROW_COUNTER_COLUMNS}
    return tuple(attrs if name == "attrs" else rec.get(name) for name in COMPARED_FIELDS)


def _differing(earlier: Seen, later: dict) -> str | None:
    """The conflict of two records with one source_id, one name and one place, but other values."""
    differ = [f"{name} ({_short(a)} on row {earlier.row}, {_short(b)} on row {later.get('row')})"
              for name, a, b in zip(COMPARED_FIELDS, earlier.values, _values(later), strict=True) if a != b]
    if not differ:
        return None
    return (f"{CONFLICT_PREFIX} rows {earlier.row} and {later.get('row')} both have source_id "
            f"{later.get('source_id')} and name {later.get('name')!r} but differ in {'; '.join(differ)}. "
            "Neither is loaded: keep the right one in the file")


def _short(value: object) -> str:
    text = repr(value.isoformat() if hasattr(value, "isoformat") else value)
    return text if len(text) <= 40 else text[:37] + "..."


def duplicate_conflict(earlier: Seen, later: dict) -> str | None:
    """Why ``later`` cannot be a repeat of ``earlier`` (the first record with its source_id), or None.

    Another facility reuses a source_id when the name differs or the place is
    farther than :data:`DUPLICATE_DISTANCE_M` (geodesic metres on the WGS-84
    ellipsoid). The one duplicate rule: loads read in pieces use it too.
    """
    sid = later.get("source_id")
    row, name, lon, lat = earlier.row, earlier.name, earlier.lon, earlier.lat
    if name != later.get("name"):
        return (f"source_id {sid} is already used by row {row} with another name "
                f"({name!r}, here {later.get('name')!r})")
    b = later["point"]
    distance = _GEOD.inv(lon, lat, b.x, b.y)[2]
    if distance > DUPLICATE_DISTANCE_M:
        return (f"source_id {sid} is already used by row {row}, {distance:.0f} m away "
                f"(more than {DUPLICATE_DISTANCE_M:.0f} m: a different place)")
    return None
