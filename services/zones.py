"""Planners' zones: load a set (``flask etl zones FILE --set NAME``), list the sets, draw a set's outlines.

Loading reads and checks every feature first (:mod:`etl.zones`), then
replaces the named set in one transaction (:mod:`db.zones`): all or nothing.
Figures by zone are :func:`services.planning.coverage_report` with
``zones=set:NAME``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from db import zones as db_zones
from etl import zones as etl_zones
from etl.errors import ETLError, Reject
from geo.errors import GeoError
from services.errors import InvalidRequest


def load_zones(engine: Engine, path: str | Path, set_name: str, *,
               crs: str | None = None) -> tuple[int, list[Reject]]:
    """Replace zone set ``set_name`` with the zones in ``path``; return (loaded, rejects).

    A file with any rejected feature writes nothing (the set stays as it was).

    Raises
    ------
    InvalidRequest
        A bad set name (``parameter`` "set") or a file that cannot be read (``parameter`` "file").
    """
    try:
        etl_zones.check_set_name(set_name)
    except ETLError as exc:
        raise InvalidRequest(str(exc), parameter="set") from None
    with engine.begin() as conn:
        try:
            rows, rejects = etl_zones.zone_rows(conn, path, crs=crs)
        except (ETLError, GeoError) as exc:
            raise InvalidRequest(str(exc), parameter="file") from None
        if rejects:
            return 0, rejects
        db_zones.replace_set(conn, set_name, rows, Path(path).name)
    return len(rows), []


def load_demo_zones(engine: Engine) -> int:
    """Load the demo's synthetic zone set (:data:`etl.zones.DEMO_SET`): each district's quarters; returns zones."""
    with engine.begin() as conn:
        rows = etl_zones.demo_zone_rows(conn)
        return db_zones.replace_set(conn, etl_zones.DEMO_SET, rows, "demo (synthetic)")


def set_names(engine: Engine) -> list[str]:
    """The loaded zone sets, sorted."""
    with engine.connect() as conn:
        return db_zones.set_names(conn)


def outlines(engine: Engine, set_name: str) -> dict[str, Any]:
    """The zones of a set as GeoJSON (WGS-84), for the planner's map."""
    with engine.connect() as conn:
        return db_zones.outlines(conn, set_name)
