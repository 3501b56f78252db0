"""One source id twice: a repeat loads once, another facility or a conflict is refused, in one
piece of a file or across the pieces a large file is read in.

Files are written here, in ``tmp_path``; expected rows and reasons are the ones written into them.
"""
from __future__ import annotations

import pytest
from shapely.geometry import Point

from etl.normalise import normalise
from etl.read import read_source
from etl.validate import validate
from tests.test_etl_robust import HEADER, csv_lines, facilities, load_file, office_rows, write_csv


class TestConflictingDuplicates:
    def test_same_id_and_name_with_other_values_is_reported_and_neither_loads(self, scratch_engine, tmp_path):
        rows = office_rows(4)
        again = list(rows[1])
        again[2] = "0632-9999999"  # another phone for SO1, same name, same place
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [again]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", accept_partial=True)
        assert [(r.row, r.source_id) for r in result.rejects] == [(3, "SO1"), (6, "SO1")]
        reason = result.rejects[1].reason
        assert "rows 3 and 6" in reason and "phone" in reason
        assert "'0632-0000001'" in reason and "'0632-9999999'" in reason
        assert sorted(facilities(scratch_engine)) == ["SO0", "SO2", "SO3"]

    def test_an_exact_repeat_still_loads_once(self, scratch_engine, tmp_path):
        rows = office_rows(3)
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [rows[0]]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84")
        assert (result.status, result.rejects) == ("loaded", [])
        assert any("row 5 (SO0) repeats row 2" in n for n in result.notes)
        assert sorted(facilities(scratch_engine)) == ["SO0", "SO1", "SO2"]

    def test_a_running_number_column_does_not_make_a_repeat_a_conflict(self, tmp_path):
        rows = office_rows(2)
        lines = ["序号," + ",".join(HEADER)] + [f"{n},{','.join(map(str, r))}" for n, r in
                                                enumerate(rows + [rows[0]], 1)]
        raw = read_source(write_csv(tmp_path / "dup.csv", lines))
        checked = validate(normalise(raw, "service_office", crs="wgs84").records, "service_office",
                           Point(117.55, 34.86).buffer(0.5))
        assert checked.rejects == [] and len(checked.accepted) == 2




class TestAcrossPieces:
    """``chunk_rows=100``: rows 2-101 are the first piece, 102-201 the second, and so on."""

    def test_a_conflict_across_pieces_refuses_both_rows(self, scratch_engine, tmp_path):
        rows = office_rows(150)
        again = list(rows[1])
        again[2] = "0632-9999999"  # SO1 again on line 152 (second piece): same name and place, other phone
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [again]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=100, accept_partial=True)
        assert [(r.row, r.source_id) for r in result.rejects] == [(3, "SO1"), (152, "SO1")]
        reason = result.rejects[1].reason
        assert "rows 3 and 152" in reason and "phone" in reason and "'0632-9999999'" in reason
        assert "SO1" not in facilities(scratch_engine) and len(facilities(scratch_engine)) == 149
        assert len(result.accepted) == 149

    def test_an_exact_repeat_across_pieces_loads_once(self, scratch_engine, tmp_path):
        rows = office_rows(150)
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [rows[1]]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=100)
        assert (result.status, result.rejects) == ("loaded", [])
        assert any("row 152 (SO1) repeats row 3" in n for n in result.notes)
        assert len(facilities(scratch_engine)) == 150

    def test_another_place_across_pieces_refuses_the_later_row(self, scratch_engine, tmp_path):
        rows = office_rows(150)
        moved = list(rows[1])
        moved[3] = round(moved[3] + 0.01, 6)  # about 900 m east
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [moved]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=100, accept_partial=True)
        assert [(r.row, r.source_id) for r in result.rejects] == [(152, "SO1")]
        assert "a different place" in result.rejects[0].reason
        assert facilities(scratch_engine)["SO1"][2] == pytest.approx(rows[1][3], abs=1e-7)

    def test_an_id_in_conflict_within_a_later_piece_refuses_its_row_in_an_earlier_one(self, scratch_engine,
                                                                                     tmp_path):
        rows = office_rows(150)
        first, second = list(rows[1]), list(rows[1])
        first[2], second[2] = "0632-8888888", "0632-9999999"  # lines 152 and 153 disagree with each other
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [first, second]))
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=100, accept_partial=True)
        assert sorted((r.row, r.source_id) for r in result.rejects) == [(3, "SO1"), (152, "SO1"), (153, "SO1")]
        assert all("conflicting records" in r.reason for r in result.rejects)
        assert "SO1" not in facilities(scratch_engine)

    def test_pieces_decide_as_one_piece_would(self, scratch_engine, tmp_path):
        rows = office_rows(150)
        again, moved = list(rows[1]), list(rows[5])
        again[2] = "0632-9999999"
        moved[3] = round(moved[3] + 0.01, 6)
        path = write_csv(tmp_path / "dup.csv", csv_lines(rows + [again, moved, rows[7]]))
        whole = load_file(scratch_engine, path, "service_office", crs="wgs84", dry_run=True)
        pieces = load_file(scratch_engine, path, "service_office", crs="wgs84", dry_run=True, chunk_rows=40)
        assert [(r.row, r.source_id) for r in pieces.rejects] == [(r.row, r.source_id) for r in whole.rejects]
        assert sorted(pieces.accepted.source_id) == sorted(whole.accepted.source_id)
