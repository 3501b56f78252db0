"""OGC API – Features Part 4 on the facility collections: create, replace, update, delete.

One code path with the admin API: every change is a call to
:mod:`services.editing` (its transaction, row lock, version check, the
ETL's validation and the ``change_log`` audit row). What this module adds is
the standard's shape: a feature belongs to a collection (a feature of
another layer is not found there), *replace* sets every editable property
(those not given become null), *delete* retires (facilities are never
deleted; the history keeps them), and geometries may come in any CRS of
:mod:`services.ogc_crs` (``Content-Crs``), transformed to WGS-84 before the
ETL checks them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from services import editing, ogc_crs
from services.errors import InvalidRequest, NotFound
from services.features import source

#: Properties a client may set; the others of a feature (layer, status, district, ...) are the server's.
EDITABLE: tuple[str, ...] = (*editing.TEXT_FIELDS, "capacity", "opened_on")


def editable_collection(key: str) -> None:
    """Refuse a collection whose features are not edited through OGC API – Features (the grid, villages, roads)."""
    if not source(key).editable:
        raise InvalidRequest(f"{key} is read-only; features are created, replaced, updated and deleted in the "
                             "facility layers", parameter="collectionId")


def to_wgs84(geometry: BaseGeometry | None, crs_uri: str) -> BaseGeometry | None:
    """A geometry given in CRS ``crs_uri`` (its EPSG axis order) as WGS-84 longitude/latitude."""
    if geometry is None or crs_uri == ogc_crs.CRS84:
        return geometry
    code = ogc_crs.srid(crs_uri)
    if ogc_crs.first_axis_north(code):
        geometry = shapely.transform(geometry, lambda xy: xy[:, ::-1])
    if code == 4326:
        return geometry
    move = Transformer.from_crs(code, 4326, always_xy=True)
    return shapely.transform(geometry, lambda xy: _stack(move.transform(xy[:, 0], xy[:, 1])))


def _stack(xy: tuple[Any, Any]) -> Any:
    return np.column_stack(xy)


def _edit(values: dict[str, Any], geometry: BaseGeometry | None, crs_uri: str) -> editing.Edit:
    return editing.Edit(values=values, geometry=to_wgs84(geometry, crs_uri), crs="wgs84")


def _member(engine: Engine, key: str, feature_id: int) -> dict[str, Any]:
    """The facility if it is an active feature of collection ``key``; else :class:`NotFound`."""
    editable_collection(key)
    try:
        current = editing.get_facility(engine, feature_id)
    except NotFound:
        current = None
    if current is None or current["layer"] != key or current["status"] != "active":
        raise NotFound(f"feature {feature_id} does not exist in {key}")
    return current


def create(engine: Engine, key: str, values: dict[str, Any], geometry: BaseGeometry | None, *, crs_uri: str,
           source_id: str | None, actor: str) -> dict[str, Any]:
    """A new feature of facility collection ``key`` (``editing.create_facility``); returns it with its ETag."""
    editable_collection(key)
    if geometry is None:
        raise InvalidRequest("a new feature needs a geometry", parameter="geometry")
    if not values.get("name"):
        raise InvalidRequest("a new feature needs properties.name", parameter="name")
    return editing.create_facility(engine, key, _edit(values, geometry, crs_uri), source_id=source_id, actor=actor)


def replace(engine: Engine, key: str, feature_id: int, values: dict[str, Any], geometry: BaseGeometry | None, *,
            crs_uri: str, expected_version: int | None, actor: str) -> dict[str, Any]:
    """Replace a feature: every editable property set (absent ones become null) and a new geometry."""
    _member(engine, key, feature_id)
    if geometry is None:
        raise InvalidRequest("a replacement needs a geometry", parameter="geometry")
    if not values.get("name"):
        raise InvalidRequest("a replacement needs properties.name", parameter="name")
    full = {name: values.get(name) for name in EDITABLE}
    return editing.patch_facility(engine, feature_id, _edit(full, geometry, crs_uri),
                                  expected_version=expected_version, actor=actor)


def update(engine: Engine, key: str, feature_id: int, values: dict[str, Any], geometry: BaseGeometry | None, *,
           crs_uri: str, expected_version: int | None, actor: str) -> dict[str, Any]:
    """Change some properties and/or the geometry of a feature (a merge patch)."""
    _member(engine, key, feature_id)
    return editing.patch_facility(engine, feature_id, _edit(values, geometry, crs_uri),
                                  expected_version=expected_version, actor=actor)


def delete(engine: Engine, key: str, feature_id: int, *, expected_version: int | None, actor: str) -> dict[str, Any]:
    """Retire a feature: it leaves every collection, export and tile; its history keeps it."""
    _member(engine, key, feature_id)
    return editing.retire_facility(engine, feature_id, expected_version=expected_version, actor=actor,
                                   reason="deleted through OGC API – Features")
