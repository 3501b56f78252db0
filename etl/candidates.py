"""Candidate sites for site suggestions: a planner's own list of possible locations.

``load_candidates`` reads any file the facility ETL reads (same column
detection, CRS handling and checks: inside the city, a name, a point), and
replaces the named set in one transaction. A file with any bad row writes
nothing; the rejects say why.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.errors import ETLError, Reject
from etl.load import assign_districts, city_and_districts

SET_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


def load_candidates(engine: Engine, path: str | Path, set_name: str, *,
                    crs: str | None = None) -> tuple[int, list[Reject]]:
    """Replace candidate set ``set_name`` with the sites in ``path``; return (loaded, rejects)."""
    from etl.normalise import normalise
    from etl.read import read_source
    from etl.validate import validate

    if not SET_NAME.fullmatch(set_name or ""):
        raise ETLError(f"set name was {set_name!r} but must be 1-40 letters, digits, '_' or '-'")
    raw = read_source(Path(path))
    norm = normalise(raw, "service_office", crs=crs)  # any point layer: sites are points
    city, codes, polys = city_and_districts(engine)
    checked = validate(norm.records, "service_office", city)
    rejects = sorted(norm.rejects + checked.rejects, key=lambda r: (r.row is None, r.row))
    if rejects:
        return 0, rejects
    sites = checked.accepted
    districts = assign_districts(np.array([r["point"] for r in sites], dtype=object), codes, polys)
    rows = [{"set": set_name, "sid": str(r["source_id"]), "name": r["name"], "district": d,
             "wkb": shapely.to_wkb(r["point"], hex=True)} for r, d in zip(sites, districts)]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM candidate_site WHERE set_name = :set"), {"set": set_name})
        if rows:
            conn.execute(text(
                "INSERT INTO candidate_site (set_name, source_id, name, district_adcode, point) VALUES "
                "(:set, :sid, :name, :district, ST_SetSRID(ST_GeomFromWKB(decode(:wkb, 'hex')), 4326))"), rows)
    return len(rows), []
