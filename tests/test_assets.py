"""Front-end files: served by the app itself, compressed for phones, revalidated with 304s.

Checked against the files on disk, decompressed with the brotli and gzip
libraries (not the app's code).
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import pytest

from web import create_app

ROOT = Path(__file__).resolve().parents[1]
#: No database is reached by these routes.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/none"


@pytest.fixture(scope="module")
def client():
    return create_app({"DATABASE_URL": UNREACHABLE, "TESTING": True}).test_client()


@pytest.mark.parametrize("url, path", [
    ("/static/resident.js", ROOT / "web" / "static" / "resident.js"),
    ("/static/resident.css", ROOT / "web" / "static" / "resident.css"),
    ("/vendor/leaflet/dist/leaflet.js", ROOT / "node_modules" / "leaflet" / "dist" / "leaflet.js"),
])
class TestCompressed:
    def test_brotli_when_accepted_and_the_bytes_are_the_file(self, client, url, path):
        if not path.exists():
            pytest.skip(f"{path.name} is not installed (npm ci)")
        res = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert res.status_code == 200
        assert res.headers["Content-Encoding"] == "br"
        assert "Accept-Encoding" in res.headers["Vary"]
        assert brotli.decompress(res.data) == path.read_bytes()
        assert len(res.data) < 0.5 * path.stat().st_size  # what a phone downloads

    def test_gzip_for_older_clients_and_plain_for_none(self, client, url, path):
        if not path.exists():
            pytest.skip(f"{path.name} is not installed (npm ci)")
        res = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert res.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(res.data) == path.read_bytes()
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in plain.headers and plain.data == path.read_bytes()

    def test_revalidation_answers_304_without_a_body(self, client, url, path):
        if not path.exists():
            pytest.skip(f"{path.name} is not installed (npm ci)")
        first = client.get(url, headers={"Accept-Encoding": "br"})
        again = client.get(url, headers={"Accept-Encoding": "br", "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""


def test_images_are_not_compressed_twice_and_missing_files_are_404(client):
    assert client.get("/static/no-such-file.js", headers={"Accept-Encoding": "br"}).status_code == 404
    assert client.get("/vendor/not-a-package/x.js").status_code == 404
    pngs = sorted((ROOT / "node_modules" / "leaflet" / "dist" / "images").glob("*.png"))
    if pngs:
        res = client.get(f"/vendor/leaflet/dist/images/{pngs[0].name}", headers={"Accept-Encoding": "br"})
        assert "Content-Encoding" not in res.headers and res.data == pngs[0].read_bytes()


def test_auto_basemap_allows_the_tile_host_it_resolves_to():
    for key, host in (("", "autonavi.com"), ("k", "tianditu.gov.cn")):
        app = create_app({"DATABASE_URL": UNREACHABLE, "TESTING": True, "BASEMAP": "auto", "TIANDITU_KEY": key})
        csp = app.test_client().get("/static/resident.css").headers["Content-Security-Policy"]
        img = re.search(r"img-src ([^;]*)", csp).group(1)
        assert host in img, csp
