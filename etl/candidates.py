"""Candidate sites for site suggestions: a planner's own list of possible locations.

:func:`candidate_sites` reads any file the facility ETL reads (same column
detection, CRS handling and checks: inside the city, a name, a point) and
returns the sites ready to store, or the rejects that say why not. Storing
them (replacing the named set in one transaction, nothing when any row is
bad) is :func:`services.loading.load_candidates`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy.engine import Connection

from etl.errors import ETLError, Reject
from etl.load import assign_districts, city_and_districts
from etl.normalise import normalise
from etl.read import read_source
from etl.validate import validate
from layers import LAYERS, Layer

SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


def site_layer() -> Layer:
    """The layer whose rules candidate sites are checked by: the first point layer of the registry."""
    return next(layer for layer in LAYERS.values() if layer.geometry_kind == "point")


def check_set_name(set_name: str) -> str:
    """``set_name`` if it is 1-40 letters, digits, ``_`` or ``-``.

    Raises
    ------
    ETLError
        Naming the value and what is allowed.
    """
    if not SET_NAME.fullmatch(set_name or ""):
        raise ETLError(f"set name was {set_name!r} but must be 1-40 letters, digits, '_' or '-'")
    return set_name


def candidate_sites(conn: Connection, path: str | Path, *,
                    crs: str | None = None) -> tuple[list[dict[str, Any]], list[Reject]]:
    """The sites in ``path`` with their districts, or the rejected rows (then no sites).

    Each site has ``source_id``, ``name``, ``district_adcode`` and ``wkb`` (the
    WGS-84 point as WKB hex). The districts are read on ``conn``.

    Raises
    ------
    ETLError, CRSError
        When the file cannot be read at all.
    """
    layer = site_layer().key  # sites are points: checked as any point layer's facilities are
    norm = normalise(read_source(Path(path)), layer, crs=crs)
    city, codes, polys = city_and_districts(conn)
    checked = validate(norm.records, layer, city)
    rejects = sorted(norm.rejects + checked.rejects, key=lambda r: (r.row is None, r.row))
    if rejects:
        return [], rejects
    sites = checked.accepted
    districts = assign_districts(np.array([r["point"] for r in sites], dtype=object), codes, polys)
    return [{"source_id": str(r["source_id"]), "name": r["name"], "district_adcode": d,
             "wkb": shapely.to_wkb(r["point"], hex=True)} for r, d in zip(sites, districts, strict=True)], []
