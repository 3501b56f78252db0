"""Front-end files served by the app: its own ``static/`` and packages from the npm registry.

Nothing is loaded from outside: ``/vendor/<package>/<path>`` serves files of
the allowed packages from ``node_modules``, installed at set-up. Scripts,
styles and other text files go out compressed (brotli, else gzip), each
compressed once per file version and kept in memory: they are the bulk of a
page's first load on a phone.
"""
from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import brotli
from flask import Blueprint, Flask, Response, abort, request, send_from_directory

NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
PACKAGES = {"leaflet", "leaflet.markercluster", "swagger-ui-dist", "maplibre-gl"}
#: Cache lifetime of front-end files, seconds.
MAX_AGE = 86400
#: Types worth compressing (images and fonts are compressed already).
COMPRESSIBLE = {"text/css", "text/javascript", "application/javascript", "application/json", "image/svg+xml",
                "text/html", "text/plain", "application/x-javascript"}

bp = Blueprint("assets", __name__)


@bp.get("/vendor/<package>/<path:filename>")
def vendor(package: str, filename: str) -> Response:
    if package not in PACKAGES:
        abort(404)
    root = NODE_MODULES / package
    if not root.is_dir():
        abort(404, description=f"front-end package {package} is not installed: run `make demo` (npm ci)")
    return send_compressed(root, filename)


def init_app(app: Flask) -> None:
    """Serve the app's ``static/`` folder through :func:`send_compressed` too."""
    folder = app.static_folder

    def static(filename: str) -> Response:
        assert folder is not None
        return send_compressed(Path(folder), filename)

    app.view_functions["static"] = static


def send_compressed(root: Path, filename: str) -> Response:
    """``send_from_directory`` (404s, ETags, 304s), with the body compressed when the client accepts it."""
    response = send_from_directory(root, filename, max_age=MAX_AGE)
    response.vary.add("Accept-Encoding")
    if response.status_code != 200 or response.mimetype not in COMPRESSIBLE or request.method != "GET":
        return response
    encoding = _chosen_encoding()
    if encoding is None:
        return response
    path = Path(root, filename)
    stat = os.stat(path)
    body = _compressed(str(path), stat.st_mtime_ns, stat.st_size, encoding)
    response.close()  # the file handle send_from_directory opened
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    etag, _weak = response.get_etag()
    if etag:  # the same file in another encoding: weak, as nginx does, so revalidation still gives 304
        response.set_etag(etag, weak=True)
    return response


def _chosen_encoding() -> str | None:
    accepted = request.accept_encodings
    for encoding in ("br", "gzip"):
        if accepted[encoding] > 0:
            return encoding
    return None


@lru_cache(maxsize=256)
def _compressed(path: str, mtime_ns: int, size: int, encoding: str) -> bytes:
    """The file's bytes compressed; the key holds the file's version, so an updated file is compressed anew."""
    data = Path(path).read_bytes()
    if encoding == "br":
        return bytes(brotli.compress(data, quality=9))
    return gzip.compress(data, compresslevel=9, mtime=0)
