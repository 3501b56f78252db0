"""Values that COPY's text format must escape arrive in ``facility`` exactly as the file has them.

The staged rows go to PostgreSQL as COPY text built column by column
(:func:`etl.staging.staging_copy`); a backslash, tab, line break, quote or a
value that reads like COPY's NULL marker must come back unchanged. Expected
values are the ones written into the file. Runs on the scratch database.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import text

from etl.staging import wkb_hex
from services.loading import load_file

LAYER = "service_office"

AWKWARD = {
    "SO1": ("反斜杠\\路", "C:\\temp\\N"),
    "SO2": ("制表\t符", "第一行\n第二行"),
    "SO3": ('引号"名"', "逗号,地址"),
    "SO4": ("\\N", "回车\r\n换行"),
    "SO5": ("普通名称", ""),
}


def test_awkward_text_round_trips(scratch_engine, tmp_path: Path):
    path = tmp_path / "awkward.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["编号", "名称", "地址", "经度", "纬度"])
        for i, (sid, (name, address)) in enumerate(AWKWARD.items()):
            out.writerow([sid, name, address, f"{117.50 + i * 0.001:.6f}", "34.830000"])
    result = load_file(scratch_engine, path, LAYER, crs="wgs84")
    assert result.status == "loaded", result.rejects
    with scratch_engine.connect() as conn:
        rows = {r.source_id: (r.name, r.address) for r in conn.execute(text(
            "SELECT source_id, name, address FROM facility WHERE layer = :l"), {"l": LAYER})}
    assert set(rows) == set(AWKWARD)
    for sid, (name, address) in AWKWARD.items():
        assert rows[sid][0] == name.strip()
        # an empty address is no address; line breaks inside a value are kept as written (csv keeps \r\n)
        assert rows[sid][1] == (address.strip() or None)


def test_points_packed_as_wkb_read_back_as_the_same_positions():
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(116.0, 118.0, 500), rng.uniform(34.0, 36.0, 500)
    points = shapely.points(lon, lat)
    read_back = shapely.from_wkb(wkb_hex(points))
    assert np.array_equal(shapely.get_x(read_back), lon) and np.array_equal(shapely.get_y(read_back), lat)
    # other geometries (a park's polygon) keep shapely's own encoding
    mixed = np.array([shapely.Point(117.5, 34.8), shapely.box(117.5, 34.8, 117.51, 34.81)], dtype=object)
    assert shapely.equals(shapely.from_wkb(wkb_hex(mixed)), mixed).all()
