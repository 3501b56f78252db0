"""The city's real township list (``data/divisions``) and operator files of township positions.

Statistical division codes have nine digits: the district's six, then
``001``–``099`` for streets (街道), ``100``–``199`` for towns (镇) and
``400``–``499`` for statistical development zones.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from etl.errors import ETLError

TOWNSHIP_FILE = Path(__file__).resolve().parents[1] / "data" / "divisions" / "township_codes_3704_modood.csv"
TOWNSHIP_SOURCE = "modood/Administrative-divisions-of-China dist/streets.csv (NBS statistical division codes)"


@dataclass(frozen=True)
class Township:
    """One township-level unit: 9-digit code, name, district adcode and kind (street, town or zone)."""

    code: str
    name: str
    district_adcode: str
    kind: str


def township_kind(code: str) -> str:
    """``street``, ``town`` or ``zone`` from the code's last three digits."""
    serial = int(code[6:9])
    if serial < 100:
        return "street"
    if serial < 400:
        return "town"
    return "zone"


def read_townships(path: Path = TOWNSHIP_FILE) -> list[Township]:
    """The township list, in code order."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [Township(r["code"], r["name"].strip(), r["areaCode"], township_kind(r["code"]))
                for r in csv.DictReader(fh)]
    return sorted(rows, key=lambda t: t.code)


def read_positions(path: Path, known: set[str]) -> dict[str, tuple[float, float]]:
    """Township positions from an operator's CSV (``code,lon,lat``, WGS-84 degrees), checked.

    Raises :class:`~etl.errors.ETLError` naming the row and what is wrong:
    a missing column, an unknown code, a position that is not a number or
    outside ±180/±90.
    """
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "lon", "lat"} - set(reader.fieldnames or ())
        if missing:
            raise ETLError(f"{path.name}: missing column(s) {', '.join(sorted(missing))}; "
                            "expected code,lon,lat (WGS-84 degrees)")
        out: dict[str, tuple[float, float]] = {}
        for n, row in enumerate(reader, start=2):
            out[row["code"].strip()] = _position(path.name, n, row, known)
    return out


def _position(name: str, n: int, row: dict[str, str], known: set[str]) -> tuple[float, float]:
    code = row["code"].strip()
    if code not in known:
        raise ETLError(f"{name} row {n}: code {code[:20]!r} is not a township of the city")
    try:
        lon, lat = float(row["lon"]), float(row["lat"])
    except ValueError:
        raise ETLError(f"{name} row {n}: lon/lat must be numbers (WGS-84 degrees)") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ETLError(f"{name} row {n}: lon must be within ±180 and lat within ±90")
    return lon, lat
