"""Loaders never corrupt silently: broken, hostile and careless files are refused clearly.

Each bad file is made here, in ``tmp_path``. Spreadsheets are written with
openpyxl and then edited as a tool that leaves a stale ``<dimension>`` tag
would leave them. Expected values are the ones written into the files.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from openpyxl import Workbook
from shapely.geometry import Point
from sqlalchemy import text

from etl import load as etl_load
from etl.errors import ETLError
from etl.limits import MAX_CELL_CHARS, MAX_COLUMNS, MAX_LINE_BYTES, MAX_SHEET_ROWS
from etl.read import iter_source, read_source
from etl.validate import MAX_SOURCE_ID_CHARS, MAX_TEXT_CHARS, validate


def load_file(engine, path, layer, **options):
    """The ETL's load of one file on a connection of ``engine`` (as the loading service runs it),
    so its own ETLError reaches the test."""
    with engine.connect() as conn:
        return etl_load.load_file(conn, path, layer, **options)

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["机构编号", "机构名称", "联系电话", "经度", "纬度"]
#: A box well inside Zaozhuang (WGS-84 degrees).
CITY_BOX = (117.50, 34.84, 117.60, 34.88)


def office_rows(n: int) -> list[list]:
    """``n`` offices on a diagonal inside the city, ids SO0..SOn-1."""
    return [[f"SO{i}", f"市民服务中心{i}号", f"0632-{i:07d}", round(117.51 + i * 0.0007, 6),
             round(34.845 + i * 0.0002, 6)] for i in range(n)]


def write_xlsx(path: Path, rows: list[list], dimension: str | None = None) -> Path:
    """An .xlsx of ``rows``; ``dimension`` replaces the sheet's ``<dimension ref=...>``."""
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    if dimension is not None:
        patch_sheet(path, lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>',
                                             f'<dimension ref="{dimension}"/>'.encode(), xml))
    return path


def patch_sheet(path: Path, edit) -> None:
    """Rewrite ``xl/worksheets/sheet1.xml`` inside the workbook with ``edit(bytes) -> bytes``."""
    patched = path.with_suffix(".patched")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                new = edit(data)
                assert new != data, "the sheet was not changed"
                data = new
            dst.writestr(item, data)
    shutil.move(patched, path)


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def csv_lines(rows: list[list]) -> list[str]:
    return [",".join(HEADER)] + [",".join(str(v) for v in row) for row in rows]


def facilities(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source_id, name, phone, ST_X(point), ST_Y(point) FROM facility")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


# --- XLSX: stale or hostile <dimension> tags -----------------------------------

class TestXlsxDimensions:
    @pytest.mark.parametrize("tag", ["A1:B2", "A1", "B3:C4"])
    def test_a_stale_dimension_tag_reads_every_row_and_column(self, tmp_path, tag):
        rows = office_rows(11)
        path = write_xlsx(tmp_path / "offices.xlsx", [HEADER] + rows, dimension=tag)
        raw = read_source(path)
        assert list(raw.frame.columns) == HEADER
        assert raw.row_numbers == list(range(2, 13))
        assert raw.frame["机构编号"].tolist() == [r[0] for r in rows]
        assert [float(v) for v in raw.frame["纬度"]] == [r[4] for r in rows]

    def test_a_stale_tag_file_loads_all_rows_in_pieces(self, scratch_engine, tmp_path):
        rows = office_rows(11)
        path = write_xlsx(tmp_path / "offices.xlsx", [HEADER] + rows, dimension="A1:B2")
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=4)
        assert (result.status, len(result.accepted), len(result.rejects)) == ("loaded", 11, 0)
        stored = facilities(scratch_engine)
        assert sorted(stored) == sorted(r[0] for r in rows)
        for sid, name, phone, lon, lat in rows:
            assert stored[sid][:2] == (name, phone)
            assert stored[sid][2] == pytest.approx(lon, abs=1e-7) and stored[sid][3] == pytest.approx(lat, abs=1e-7)

    def test_a_whole_sheet_dimension_tag_stays_small_in_memory(self, tmp_path):
        """A 5 KB file that claims A1:XFD1048576 once drove the loader past 6 GB."""
        path = write_xlsx(tmp_path / "bomb.xlsx", [HEADER] + office_rows(2), dimension="A1:XFD1048576")
        assert path.stat().st_size < 10_000
        script = textwrap.dedent(f"""
            import json, resource, sys
            resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # fail fast rather than swap
            from etl.read import read_source
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            raw = read_source({str(path)!r})
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({{"rows": len(raw.frame), "columns": len(raw.frame.columns), "before_mib": before,
                              "peak_mib": peak}}))
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        assert (measured["rows"], measured["columns"]) == (2, len(HEADER))
        grown = measured["peak_mib"] - measured["before_mib"]
        assert grown < 100, f"reading a 5 KB workbook took {grown:.0f} MiB beyond the imports"
        assert measured["peak_mib"] < 1024


class TestXlsxCaps:
    def test_a_value_past_the_column_cap_is_refused_naming_sheet_and_row(self, tmp_path):
        book = Workbook()
        sheet = book.active
        for row in [HEADER] + office_rows(3):
            sheet.append(row)
        sheet.cell(row=4, column=MAX_COLUMNS + 5, value="far away")
        book.save(tmp_path / "wide.xlsx")
        with pytest.raises(ETLError, match=r"sheet 'Sheet', row 4 .*MAX_COLUMNS"):
            read_source(tmp_path / "wide.xlsx")

    def test_empty_styled_cells_far_right_are_not_a_column(self, tmp_path):
        book = Workbook()
        sheet = book.active
        for row in [HEADER] + office_rows(3):
            sheet.append(row)
        sheet.cell(row=3, column=MAX_COLUMNS + 500).number_format = "0.00"  # formatting only, no value
        book.save(tmp_path / "styled.xlsx")
        raw = read_source(tmp_path / "styled.xlsx")
        assert list(raw.frame.columns) == HEADER and len(raw.frame) == 3

    def test_a_cell_past_the_cell_cap_is_refused_naming_the_cell(self, tmp_path):
        rows = office_rows(3)
        rows[1][1] = "LONG-CELL"  # openpyxl cuts text at Excel's limit when writing: lengthen it after
        path = write_xlsx(tmp_path / "long.xlsx", [HEADER] + rows)
        patch_sheet(path, lambda xml: xml.replace(b"LONG-CELL", ("长" * (MAX_CELL_CHARS + 1)).encode()))
        with pytest.raises(ETLError, match=rf"cell B3: {MAX_CELL_CHARS + 1:,} characters.*MAX_CELL_CHARS"):
            read_source(path)

    def test_rows_past_what_a_sheet_holds_are_refused_before_parsing(self, tmp_path):
        path = write_xlsx(tmp_path / "tall.xlsx", [HEADER] + office_rows(3))
        far = MAX_SHEET_ROWS + 1000
        patch_sheet(path, lambda xml: xml.replace(b'<row r="4"', f'<row r="{far}"'.encode())
                    .replace(b'r="A4"', f'r="A{far}"'.encode()))
        with pytest.raises(ETLError, match=rf"row {far:,}; a sheet holds at most {MAX_SHEET_ROWS:,} rows"):
            next(iter_source(path))

    def test_a_header_only_sheet_is_refused(self, tmp_path):
        with pytest.raises(ETLError, match="no data rows"):
            read_source(write_xlsx(tmp_path / "empty.xlsx", [HEADER]))


# --- CSV: encodings ------------------------------------------------------------

class TestMixedEncodings:
    def test_a_gbk_file_with_one_utf8_line_is_refused_naming_the_line(self, tmp_path):
        lines = csv_lines(office_rows(6))
        data = b"".join((line.encode("utf-8" if n == 5 else "gbk") + b"\n") for n, line in enumerate(lines, 1))
        (tmp_path / "mixed.csv").write_bytes(data)
        with pytest.raises(ETLError) as caught:
            read_source(tmp_path / "mixed.csv")
        message = str(caught.value)
        assert "line 5 is UTF-8" in message and "GBK (from line 1)" in message

    def test_a_utf8_file_with_one_gbk_line_is_refused_naming_the_line(self, tmp_path):
        lines = csv_lines(office_rows(6))
        data = b"".join((line.encode("gbk" if n == 6 else "utf-8") + b"\n") for n, line in enumerate(lines, 1))
        (tmp_path / "mixed.csv").write_bytes(data)
        with pytest.raises(ETLError, match=r"line 6 is GBK, but the file is UTF-8 \(from line 1\)"):
            read_source(tmp_path / "mixed.csv")

    def test_a_mixed_file_loads_nothing_and_the_cli_says_where(self, scratch_app, scratch_engine, tmp_path):
        lines = csv_lines(office_rows(6))
        data = b"".join((line.encode("utf-8" if n == 4 else "gbk") + b"\n") for n, line in enumerate(lines, 1))
        (tmp_path / "mixed.csv").write_bytes(data)
        result = scratch_app.test_cli_runner().invoke(args=[
            "etl", "load", str(tmp_path / "mixed.csv"), "--layer", "service_office", "--crs", "wgs84"])
        assert result.exit_code == 2
        assert "line 4 is UTF-8" in result.output
        assert facilities(scratch_engine) == {}

    def test_a_utf8_bom_file_with_a_gbk_line_names_the_line(self, tmp_path):
        lines = csv_lines(office_rows(3))
        data = b"\xef\xbb\xbf" + b"".join(
            (line.encode("gbk" if n == 3 else "utf-8") + b"\n") for n, line in enumerate(lines, 1))
        (tmp_path / "bom.csv").write_bytes(data)
        with pytest.raises(ETLError, match="line 3 is GBK, but the file is UTF-8 .from its UTF-8 byte-order mark"):
            read_source(tmp_path / "bom.csv")

    def test_a_gbk_file_read_in_small_pieces_is_still_gbk(self, tmp_path):
        rows = office_rows(30)
        path = write_csv(tmp_path / "gbk.csv", csv_lines(rows), encoding="gbk")
        pieces = list(iter_source(path, chunk_rows=7))
        assert {p.encoding for p in pieces} == {"gbk"}
        assert [n for p in pieces for n in p.frame["机构名称"]] == [r[1] for r in rows]


class TestMixedEncodingsInShapefiles:
    def test_a_dbf_with_one_utf8_record_among_gbk_is_refused_naming_the_record(self, tmp_path):
        names = ["中心一二三四", "中心五六七八", "中心九十百千"]  # 12 bytes each in GBK
        frame = gpd.GeoDataFrame({"code": ["A", "B", "C"], "name": names},
                                 geometry=[Point(117.55 + i * 0.01, 34.86) for i in range(3)], crs="EPSG:4326")
        path = tmp_path / "stations.shp"
        frame.to_file(path, encoding="gbk")
        dbf = path.with_suffix(".dbf")
        data = dbf.read_bytes()
        utf8 = "中心五六".encode()  # also 12 bytes
        assert data.count(names[1].encode("gbk")) == 1 and len(utf8) == len(names[1].encode("gbk"))
        dbf.write_bytes(data.replace(names[1].encode("gbk"), utf8))
        with pytest.raises(ETLError, match=r"stations\.dbf mixes text encodings: record 2 is UTF-8, but the file "
                                           r"is GBK \(from record 1\)"):
            read_source(path)


# --- CSV: caps and empty files -----------------------------------------------------

class TestCsvCaps:
    def test_a_huge_name_line_is_refused_before_loading(self, scratch_engine, tmp_path):
        """A 9 MB name once loaded and grew the map page from 354 KB to 9.8 MB."""
        rows = office_rows(3)
        rows[1][1] = "长" * (3 << 20)  # 9 MB of UTF-8 on line 3
        path = write_csv(tmp_path / "huge.csv", csv_lines(rows))
        with pytest.raises(ETLError, match=rf"line 3 is .* bytes long; a line may have at most {MAX_LINE_BYTES:,}"):
            load_file(scratch_engine, path, "service_office", crs="wgs84")
        assert facilities(scratch_engine) == {}

    def test_a_line_longer_than_the_cap_is_named_even_without_line_ends(self, tmp_path):
        path = tmp_path / "one_line.csv"
        path.write_bytes(b"a," * (MAX_LINE_BYTES // 2 + 10))
        with pytest.raises(ETLError, match="line 1 is more than .*MAX_LINE_BYTES"):
            read_source(path)

    def test_a_million_columns_are_refused(self, tmp_path):
        path = write_csv(tmp_path / "wide.csv", [",".join(f"c{i}" for i in range(1_000_000)), "1,2"])
        with pytest.raises(ETLError, match="MAX_LINE_BYTES|MAX_COLUMNS"):
            read_source(path)

    def test_more_columns_than_the_cap_are_refused_naming_the_count(self, tmp_path):
        header = HEADER + [f"备注{i}" for i in range(MAX_COLUMNS)]
        path = write_csv(tmp_path / "wide.csv", [",".join(header), ",".join(["x"] * len(header))])
        with pytest.raises(ETLError, match=rf"{len(header):,} columns.*at most {MAX_COLUMNS:,} \(MAX_COLUMNS\)"):
            read_source(path)

    @pytest.mark.parametrize("extra_on", [2, 4])
    def test_a_line_with_an_extra_field_is_refused_not_shifted(self, tmp_path, extra_on):
        lines = csv_lines(office_rows(4))
        lines[extra_on - 1] += ",多余"
        path = write_csv(tmp_path / "extra.csv", lines)
        with pytest.raises(ETLError, match=rf"not a well-formed CSV table: .*line {extra_on}"):
            read_source(path)

    def test_a_header_only_file_is_refused(self, scratch_engine, tmp_path):
        path = write_csv(tmp_path / "header.csv", [",".join(HEADER), "", ""])
        with pytest.raises(ETLError, match="no data rows"):
            load_file(scratch_engine, path, "service_office", crs="wgs84")
        with scratch_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM load_run")).scalar_one() == 0


# --- rows: text the admin API would refuse ---------------------------------------

class TestTextFields:
    def test_fields_longer_than_the_admin_api_allows_are_rejected_per_row(self, scratch_engine, tmp_path):
        rows = office_rows(4)
        rows[0][1] = "名" * MAX_TEXT_CHARS  # at the limit: loads
        rows[1][1] = "名" * (MAX_TEXT_CHARS + 1)
        rows[2][2] = "1" * 5000
        rows[3][0] = "X" * (MAX_SOURCE_ID_CHARS + 1)
        path = write_csv(tmp_path / "long.csv", csv_lines(rows))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", accept_partial=True)
        reasons = {r.row: r.reason for r in result.rejects}
        assert sorted(reasons) == [3, 4, 5]
        assert f"name is {MAX_TEXT_CHARS + 1} characters long; at most {MAX_TEXT_CHARS}" in reasons[3]
        assert f"phone is 5,000 characters long; at most {MAX_TEXT_CHARS}" in reasons[4]
        assert f"source_id is {MAX_SOURCE_ID_CHARS + 1} characters long" in reasons[5]
        assert list(facilities(scratch_engine)) == ["SO0"]

    @pytest.mark.parametrize("bad, what", [("\ud800", "lone surrogate U+D800"), ("\x00", "NUL"),
                                           ("\ufffd", "U+FFFD")])
    @pytest.mark.parametrize("field", ["name", "address", "source_id"])
    def test_unstorable_text_is_rejected_per_row(self, field, bad, what):
        city = Point(117.55, 34.86).buffer(0.5)
        good = {"row": 2, "source_id": "A", "name": "市民服务中心", "address": "枣庄市示例路1号",
                "geom": Point(117.55, 34.86)}
        broken = {**good, "row": 3, "source_id": "B", field: "示例" + bad + "x"}
        checked = validate([good, broken], "service_office", city)
        assert [r["row"] for r in checked.accepted] == [2]
        [reject] = checked.rejects
        assert reject.row == 3 and f"{field}: character 3 is" in reject.reason and what in reject.reason

    def test_a_geojson_with_a_lone_surrogate_escape_is_not_loaded(self, scratch_engine, tmp_path):
        features = [{"type": "Feature", "properties": {"id": f"P{i}", "name": f"公园{i}"},
                     "geometry": {"type": "Point", "coordinates": [117.55 + i * 0.001, 34.86]}} for i in range(2)]
        body = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=True)
        body = body.replace("\\u516c\\u56ed1", "\\ud800\\u56ed1")  # 公园1 -> a lone high surrogate + 园1
        (tmp_path / "parks.geojson").write_text(body, encoding="ascii")
        result = load_file(scratch_engine, tmp_path / "parks.geojson", "service_office", accept_partial=True)
        assert [r.row for r in result.rejects] == [2]
        assert "name: character 1" in result.rejects[0].reason
        assert list(facilities(scratch_engine)) == ["P0"]

    def test_a_nul_in_a_csv_cell_is_a_row_reject_not_a_crash(self, scratch_engine, tmp_path):
        rows = office_rows(3)
        rows[2][1] = "中心\x00"
        path = write_csv(tmp_path / "nul.csv", csv_lines(rows))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84")
        assert result.status == "rejected"
        assert [(r.row, r.source_id) for r in result.rejects] == [(4, "SO2")]
        assert "NUL" in result.rejects[0].reason
        assert facilities(scratch_engine) == {}
