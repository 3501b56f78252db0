"""The planners' page in a real headless Chromium, against the app on real HTTP.

A planner sees, for the chosen layer: the areas coloured with the legend's own colours, district labels,
the layer's facilities, the gap clusters (named, zooming on click), numbered suggested sites, the table
and bar chart on the applicable residents, the method note and the downloads, with the synthetic-data
note; nothing is fetched from outside. Accessibility is checked with axe-core at phone and desktop widths.
"""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser import axe_violations, launch


@pytest.fixture(scope="module")
def browser():
    yield from launch()


def _open(browser, url: str, width: int = 1280, height: int = 900, status: int = 200):
    page = browser.new_page(viewport={"width": width, "height": height})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url, wait_until="networkidle")
    assert response.status == status
    if page.locator("#suggest").count():  # the suggested sites the page fetches after its first paint
        page.locator("#suggest:not([aria-busy])").wait_for()
    return page, requests, errors


def _api(live_server, path):
    with urllib.request.urlopen(f"{live_server}{path}") as r:
        return json.load(r)


def _areas_fills(page):
    return page.eval_on_selector_all(
        "path.leaflet-interactive", "els => els.map(e => [e.getAttribute('fill'), e.getAttribute('fill-opacity')])")


@pytest.mark.parametrize("layer", ["service_office", "police_station", "pocket_park", "parking", "village_clinic"])
def test_every_layer_shows_its_map_legend_gaps_and_numbered_sites(browser, live_server, layer):
    page, requests, errors = _open(browser, f"{live_server}/planner?layer={layer}&n=4&lang=en")
    host = urlparse(live_server).netloc
    assert all(urlparse(u).netloc == host for u in requests if not u.startswith("data:")), requests
    assert not errors, errors
    legend = page.eval_on_selector_all("#legend .swatch[data-colour]", "els => els.map(e => e.dataset.colour)")
    drawn = [(f, o) for f, o in _areas_fills(page) if f in legend]
    assert len(drawn) == 6 and {o for _, o in drawn} == {"1"}  # six districts, opaque: the legend's colours
    assert page.locator("#legend-rule").inner_text()
    assert page.locator(".area-label").count() == 6
    assert sum(f == "#d7301f" for f, _ in _areas_fills(page)) >= 1
    assert page.locator("#gap-list .gap-link").count() >= 1
    numbers = page.locator(".suggested-site .site-number").all_inner_texts()
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)] and 1 <= len(numbers) <= 4
    assert page.locator("#suggest-table tbody tr").count() == len(numbers)
    assert page.locator("#coverage-table tbody tr").count() == 7
    assert page.locator("#bar-chart .bar-row").count() == 6
    assert "None" not in page.content()
    assert "SYNTHETIC" in page.locator("#synthetic-note").inner_text()
    page.close()


def test_the_headline_is_the_applicable_figure_with_all_residents_beside_it(browser, live_server):
    city = next(r for r in _api(live_server, "/api/coverage?layer=police_station&lang=en")["rows"]
                if r["district"] == "370400")
    page, _, _ = _open(browser, f"{live_server}/planner?layer=police_station&lang=en")
    assert page.locator("#city-percent").inner_text() == f"{city['percent']:.1f}%"
    assert page.locator("#all-percent").inner_text() == f"{city['all_residents']['percent']:.1f}%"
    assert "urban" in page.locator("#headline").inner_text()
    assert "along" in page.locator("#measure").inner_text()  # which measure the figures use
    page.close()


def test_the_composite_page_answers(browser, live_server):
    page, _, errors = _open(browser, f"{live_server}/planner?layer=all&lang=en")
    assert not errors and "life circle" in page.locator("#headline").inner_text()
    page.close()


def test_a_district_zooms_and_keeps_the_others_coloured(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=pocket_park&lang=en")
    city_zoom = page.evaluate("() => document.querySelector('.leaflet-container') && "
                              "[...document.querySelectorAll('.leaflet-control-scale-line')][0].innerText")
    page.goto(f"{live_server}/planner?layer=pocket_park&lang=en&district=370402", wait_until="networkidle")
    district_zoom = page.evaluate("() => [...document.querySelectorAll('.leaflet-control-scale-line')][0].innerText")
    assert _scale_m(district_zoom) < _scale_m(city_zoom)
    assert "#cccccc" not in {f for f, _ in _areas_fills(page)}  # no district greyed as "no data"
    page.close()


def _scale_m(text: str) -> float:
    value, unit = re.match(r"([\d.]+)\s*(km|m)", text).groups()
    return float(value) * (1000 if unit == "km" else 1)


def test_a_gap_zooms_the_map_on_click(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=parking&lang=en")
    before = page.locator(".leaflet-control-scale-line").first.inner_text()
    page.locator("#gap-list .gap-link").first.click()
    page.wait_for_timeout(500)
    assert _scale_m(page.locator(".leaflet-control-scale-line").first.inner_text()) < _scale_m(before)
    page.close()


def test_a_bad_parameter_gets_a_page_in_the_pages_language(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=parks&lang=zh", status=400)
    message = page.locator("#error-message").inner_text()
    assert "layer" in message and "参数" in message and "service_office" in message
    page.close()


#: Latin words allowed on the Chinese page: units, formats, standards' codes and the map library's credit.
LATIN_OK = {"Leaflet", "SFCA", "m", "km", "GB", "T", "CSV", "PDF", "PNG", "Excel", "WGS", "EPSG", "SC",
            "English", "SYNTHETIC", "2SFCA"}


def test_the_chinese_page_is_all_chinese(browser, live_server):
    for layer in ("police_station", "village_clinic", "parking"):
        page, _, _ = _open(browser, f"{live_server}/planner?layer={layer}&lang=zh")
        words = set(re.findall(r"[A-Za-z]{2,}", page.locator("body").inner_text()))
        assert words <= LATIN_OK, words - LATIN_OK
        page.close()


def test_blank_form_fields_count_as_absent(browser, live_server):
    page, _, errors = _open(browser, f"{live_server}/planner?layer=parking&radius_m=&as_of=&by=&compare=&lang=en")
    assert not errors and page.locator("#city-percent").inner_text().endswith("%")
    page.close()


def test_downloads_carry_the_date_and_radius_and_chinese_headers(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=parking&radius_m=400&as_of=2022-06-30")
    with page.expect_download() as info:
        page.locator("#download-csv").click()
    name = info.value.suggested_filename
    assert "2022-06-30" in name and "r400" in name and name.endswith(".csv")
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and "滕州市".encode() in data and "覆盖率（适用人口，%）".encode() in data
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


def test_before_and_after_side_by_side(browser, live_server):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=police_station&compare=2021-12-31,2022-06-30&lang=en")
    rows = page.locator("#compare-table tbody tr")
    assert rows.count() == 7 and "+" in rows.last.inner_text()
    page.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("width, height", [(390, 844), (1280, 900)])
def test_no_serious_accessibility_violations(browser, live_server, lang, width, height):
    page, _, _ = _open(browser, f"{live_server}/planner?layer=parking&lang={lang}", width=width, height=height)
    assert axe_violations(page) == []
    if width < 500:
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.close()


def test_suggested_sites_arrive_after_the_first_paint_with_a_progress_line(browser, live_server):
    """The page answers with its figures first; the sites it then fetches are the API's, numbered on the map."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    held = []
    page.route("**/planner/sites?*", lambda route: held.append(route))  # held back: what shows meanwhile?
    page.goto(f"{live_server}/planner?layer=parking&n=3&lang=en", wait_until="load")
    assert page.locator("#city-percent").inner_text().endswith("%")
    assert page.locator("#sites-status").inner_text() == "Computing the suggested sites…"
    assert page.locator("#suggest").get_attribute("aria-busy") == "true"
    assert page.locator("#suggest-table tbody tr").count() == 0
    while not held:  # the route handler runs as Playwright's events are pumped
        page.wait_for_timeout(20)
    assert len(held) == 1
    held[0].continue_()
    page.locator("#suggest:not([aria-busy])").wait_for()
    api = _api(live_server, "/api/suggest?layer=parking&n=3&lang=en")
    rows = page.locator("#suggest-table tbody tr").all_inner_texts()
    assert len(rows) == len(api["sites"]) >= 1
    for row, site in zip(rows, api["sites"], strict=True):
        assert row.split("\t")[0] == str(site["rank"])
        assert f"+{site['marginal_gain']:,}" in row and f"{site['lon']}, {site['lat']}" in row
    numbers = page.locator(".suggested-site .site-number").all_inner_texts()
    assert numbers == [str(s["rank"]) for s in api["sites"]]
    assert page.locator("#sites-status").inner_text() == ""
    assert page.locator("#suggest-method").inner_text() == api["method"]
    page.close()
