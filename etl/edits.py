"""One edited facility record through the ETL's own checks, as if it were a one-row file.

:func:`check_record` turns the merged record (what is stored, with the
editor's changes) into a one-row :class:`etl.read.RawTable` and runs it
through :func:`etl.normalise.normalise` and :func:`etl.validate.validate`
(CRS conversion to WGS-84, the layer's geometry kind, a name, capacity 0 or
more, inside the city, swapped lon/lat fixed), then assigns the district.
The districts are read on the caller's connection, so an edit is checked in
the same transaction that writes it.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection

from etl.errors import ETLError
from etl.load import assign_districts, city_and_districts
from etl.normalise import normalise
from etl.read import RawTable
from etl.validate import validate

#: Fields a rejection can name, besides the position (a reason starts with the field's name).
_FIELDS = ("name", "address", "phone", "opening_hours", "kind", "capacity", "opened_on")
#: Notes of the ETL that say nothing to an editor (which CRS and columns a one-row "file" used).
_QUIET_NOTES = ("CRS ", "coordinates", "columns")


class EditRejected(ETLError):
    """The edited record fails the ETL's checks; ``field`` names the field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Position:
    """A new position for a record: ``lon``/``lat`` or a ``geometry``, in ``crs`` (lon/lat degrees).

    ``crs`` is one of :data:`geo.crs.POSITION_CRS` (wgs84, gcj02, bd09).
    """

    crs: str
    lon: float | None = None
    lat: float | None = None
    geometry: BaseGeometry | None = None

    @property
    def field(self) -> str:
        """How the editor gave the position (the field a rejection names)."""
        return "geometry" if self.geometry is not None else "lon,lat"


def check_record(conn: Connection, record: dict[str, Any], layer: str,
                 position: Position | None) -> tuple[dict[str, Any], list[str]]:
    """Normalise and validate one edited record for ``layer``; assign its district.

    Parameters
    ----------
    conn : Connection
        Where the districts are read (the edit's own transaction).
    record : dict
        ``source_id``, ``name``, ``address``, ``phone``, ``opening_hours``,
        ``capacity``, ``opened_on`` (``datetime.date`` or None), ``kind``, and,
        when ``position`` is None, the stored ``geometry`` (GeoJSON, WGS-84).
    layer : str
        A key of :data:`layers.LAYERS`.
    position : Position or None
        The new position, or None to keep the stored one.

    Returns
    -------
    (dict, list of str)
        The accepted record (``geom`` and ``point`` as WGS-84 shapely
        geometries, ``district_adcode``) and the ETL's notes worth showing
        (e.g. swapped lon/lat fixed).

    Raises
    ------
    EditRejected
        Naming the field and the ETL's reason (outside the city, wrong geometry, ...).
    """
    field = position.field if position is not None else "lon,lat"
    try:
        norm = normalise(_raw_table(record, position), layer, crs=position.crs if position else "wgs84")
    except ETLError as exc:
        raise EditRejected(str(exc), field=field) from None
    if norm.rejects:
        raise EditRejected(norm.rejects[0].reason, field=field)
    city, codes, polys = city_and_districts(conn)
    checked = validate(norm.records, layer, city)
    if checked.rejects or not checked.accepted:
        reason = checked.rejects[0].reason if checked.rejects else "the record was not accepted"
        raise EditRejected(reason, field=next((f for f in _FIELDS if reason.startswith(f)), field))
    rec = checked.accepted[0]
    rec["district_adcode"] = assign_districts(np.array([rec["point"]], dtype=object), codes, polys)[0]
    if record.get("opened_on") is not None and rec.get("opened_on") is None:
        rec["opened_on"] = record["opened_on"]
    notes = [n for n in norm.notes + checked.notes if not n.startswith(_QUIET_NOTES)]
    return rec, notes


def _cell(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _raw_table(record: dict[str, Any], position: Position | None) -> RawTable:
    """One-row :class:`etl.read.RawTable` holding the merged record, as a file would."""
    cols: dict[str, Any] = {"id": record["source_id"], **{f: record.get(f) for f in _FIELDS}}
    geometry = None
    if position is None:  # position unchanged: the stored WGS-84 geometry
        geometry = [shapely.from_geojson(json.dumps(record["geometry"]))]
    elif position.geometry is not None:
        geometry = [position.geometry]
    else:
        cols["lon"], cols["lat"] = position.lon, position.lat
    frame = pd.DataFrame({k: [_cell(v)] for k, v in cols.items()}, dtype=object)
    return RawTable(frame=frame, geometry=geometry, crs=None, encoding=None, format="edit", row_numbers=[1])
