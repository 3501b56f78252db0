"""The planner's report: the PDF ("下载报告 / Download report") and the map as PNG, read back as a person would.

The PDF is turned into text with poppler's ``pdftotext`` and into an image with ``pdftoppm``; the text must
carry the title, the layer, the date, the standard, the legend and the table's figures as the API gives them.
"""
from __future__ import annotations

import json
import struct
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.browser import launch


def _pdf_text(data: bytes, tmp_path: Path) -> tuple[str, int]:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 1000  # the first page renders to an image
    return text, pages


def test_the_english_report_has_a_page_per_district_and_the_figures(client, tmp_path):
    r = client.get("/planner/report.pdf?layer=parking&lang=en&radius_m=400")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert "report_parking_" in r.headers["Content-Disposition"] and "_r400" in r.headers["Content-Disposition"]
    text, pages = _pdf_text(r.data, tmp_path)
    assert pages == 7  # the city, then the six districts
    body = client.get("/api/coverage?layer=parking&lang=en&radius_m=400").get_json()
    city = next(row for row in body["rows"] if row["district"] == "370400")
    for needed in ("Service coverage planner", "Public parking", body["as_of"], "Standard", "Coverage by area",
                   "Zaozhuang City", "Tengzhou", f"{city['percent']:.1f}%", "SYNTHETIC"):
        assert needed in text, needed


def test_the_chinese_report_for_one_district_is_one_page_in_chinese(client, tmp_path):
    r = client.get("/planner/report.pdf?layer=village_clinic&district=370481")
    text, pages = _pdf_text(r.data, tmp_path)
    assert pages == 1
    for needed in ("民生设施覆盖规划", "村卫生室", "对照标准", "滕州市", "截至日期", "合成"):
        assert needed in text, needed


def test_the_map_alone_as_png(client):
    r = client.get("/planner/map.png?layer=pocket_park&lang=en")
    assert r.status_code == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", r.data[16:24])
    assert width >= 900 and height >= 600
    assert "map_pocket_park_" in r.headers["Content-Disposition"]


@pytest.fixture(scope="module")
def browser():
    yield from launch()


def test_the_page_button_downloads_the_report(browser, live_server, tmp_path):
    page = browser.new_page()
    page.goto(f"{live_server}/planner?layer=police_station", wait_until="networkidle")
    assert page.locator("#download-report").inner_text() == "下载报告（PDF）"
    with page.expect_download() as info:
        page.locator("#download-report").click()
    text, _ = _pdf_text(Path(info.value.path()).read_bytes(), tmp_path)
    with urllib.request.urlopen(f"{live_server}/api/coverage?layer=police_station") as res:
        city = next(row for row in json.load(res)["rows"] if row["district"] == "370400")
    assert "便民警务站" in text and f"{city['percent']:.1f}%" in text
    page.close()


def _fake_chromium(tmp_path: Path, fail_times: int) -> tuple[Path, Path]:
    """A stand-in for the chromium program that exits 1 without printing ``fail_times`` times, then prints a PDF.

    Only the program Chromium is replaced (an outside process that can crash); the page, the database and the
    response are real. Each call appends a line to the returned log.
    """
    log = tmp_path / "calls.log"
    script = tmp_path / "chromium"
    script.write_text(f"""#!/bin/sh
echo call >> {log}
if [ "$(wc -l < {log})" -le {fail_times} ]; then echo "crashed before printing" >&2; exit 1; fi
for a in "$@"; do case "$a" in --print-to-pdf=*) printf '%%PDF-1.4 fake' > "${{a#--print-to-pdf=}}";; esac; done
""")
    script.chmod(0o755)
    return script, log


@pytest.mark.parametrize("lang, words", [("en", "Not possible just now"), ("zh", "请稍后再试")])
def test_a_chromium_that_fails_twice_gets_a_503_saying_try_again_not_a_bad_parameter(client, tmp_path,
                                                                                     monkeypatch, lang, words):
    from web import report_render
    script, log = _fake_chromium(tmp_path, fail_times=99)
    monkeypatch.setattr(report_render, "chromium", lambda: str(script))
    r = client.get(f"/planner/report.pdf?layer=parking&lang={lang}", headers={"Accept": "text/html"})
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    page = r.get_data(as_text=True)
    assert words in page and ("Bad parameter" not in page and "参数有误" not in page)
    assert len(log.read_text().splitlines()) == 2  # tried once more before giving up


def test_a_chromium_that_fails_once_is_tried_again_and_the_report_downloads(client, tmp_path, monkeypatch):
    from web import report_render
    script, log = _fake_chromium(tmp_path, fail_times=1)
    monkeypatch.setattr(report_render, "chromium", lambda: str(script))
    r = client.get("/planner/report.pdf?layer=parking&lang=en")
    assert r.status_code == 200 and r.data.startswith(b"%PDF") and r.mimetype == "application/pdf"
    assert len(log.read_text().splitlines()) == 2
