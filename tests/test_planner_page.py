"""The planners' page in a real headless Chromium, against the app on real HTTP.

A planner sees, for the chosen layer: the district choropleth with its legend,
the gap clusters, the suggested sites, the table, the bar chart and the
downloads, with the synthetic-data note; nothing is fetched from outside.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
#: The choropleth classes' colours (light to dark green), as the planner sees them in the legend.
GREENS = {"#f7fcb9", "#c2e699", "#78c679", "#31a354", "#006837", "#cccccc"}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    yield b
    b.close()
    pw.stop()


def _open(browser, url: str, width: int = 1280, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url, wait_until="networkidle")
    assert response.status == 200
    return page, requests, errors


@pytest.mark.parametrize("layer", ["service_office", "police_station", "pocket_park", "parking", "village_clinic"])
def test_every_layer_shows_choropleth_legend_gaps_and_sites(browser, live_server, layer):
    page, requests, errors = _open(browser, f"{live_server}/planner?layer={layer}&n=4&lang=en")
    host = urlparse(live_server).netloc
    assert all(urlparse(u).netloc == host for u in requests if not u.startswith("data:")), requests
    assert not errors, errors
    # Six districts filled with the legend's colours.
    fills = page.eval_on_selector_all(
        "path.leaflet-interactive", "els => els.map(e => e.getAttribute('fill'))")
    assert sum(f in GREENS for f in fills) >= 6
    legend = page.locator("#legend")
    assert legend.is_visible() and "0–20%" in legend.inner_text() and "80–100%" in legend.inner_text()
    # Gap clusters: red outlines on the map and listed below it.
    assert sum(f == "#d7301f" for f in fills) >= 1
    assert page.locator("#gap-list li").count() >= 1
    # Four suggested sites on the map and in their table.
    assert page.locator("path.suggested-site").count() == 4
    assert page.locator("#suggest-table tbody tr").count() == 4
    # Table and chart: 6 districts (+ the city row in the table), each bar as wide as its percent.
    assert page.locator("#coverage-table tbody tr").count() == 7
    assert page.locator("#bar-chart .bar-row").count() == 6
    assert "SYNTHETIC" in page.locator("#synthetic-note").inner_text()
    page.close()


def test_figures_match_the_api_and_show_their_standard(browser, live_server, client):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{live_server}/api/coverage?layer=pocket_park&lang=en") as r:
        city = [row for row in json.load(r)["rows"] if row["district"] == "370400"][0]
    page, _, _ = _open(browser, f"{live_server}/planner?layer=pocket_park&lang=en")
    assert page.locator("#city-percent").inner_text() == f"{city['percent']:.1f}%"
    headline = page.locator("#headline").inner_text()
    assert "GB/T 51346-2019" in headline and "500 m" in headline
    rows = page.locator("#coverage-table tbody tr")
    assert "GB/T 51346-2019" in rows.last.inner_text()
    page.close()


def test_chinese_by_default_and_phone_width_fits(browser, live_server):
    page, _, errors = _open(browser, f"{live_server}/planner?layer=village_clinic", width=390, height=844)
    assert not errors
    assert page.locator("h1").inner_text() == "民生设施覆盖规划"
    assert "合成" in page.locator("#synthetic-note").inner_text()
    assert "枣庄市" in page.locator("#coverage-table").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator(".map-wrap").bounding_box()["width"] <= 390
    page.close()


def test_downloads_are_csv_with_bom_and_xlsx(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=parking")
    with page.expect_download() as info:
        page.locator("#download-csv").click()
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and "滕州市".encode() in data
    with page.expect_download() as info:
        page.locator("#download-xlsx").click()
    assert Path(info.value.path()).read_bytes()[:2] == b"PK"
    page.close()


def test_as_of_before_this_year_shows_lower_police_coverage(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=police_station&as_of=2021-12-31&lang=en")
    before = float(page.locator("#city-percent").inner_text().rstrip("%"))
    page.goto(f"{live_server}/planner?layer=police_station&lang=en")
    after = float(page.locator("#city-percent").inner_text().rstrip("%"))
    assert before == 0.0 and after > 10.0
    page.close()
