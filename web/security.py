"""Security headers on every response, and the limits every request is held to.

The Content-Security-Policy allows scripts, styles, fonts and images from the
app itself only (plus the configured basemap tile host for images). Inline
scripts need the per-request nonce: templates write
``<script nonce="{{ csp_nonce() }}">``; :func:`add_nonce` stamps it on HTML
made by other tools (Folium).

Limits: a query string over :data:`MAX_QUERY` characters is refused with JSON
414 (the serving front refuses longer request lines the same way); a request
that runs out of its worker's memory ceiling (``web/lane.py``)
gets JSON 503 with ``Retry-After``, and one that finds the disk full gets JSON
507, instead of a dead worker or a 500.
"""
from __future__ import annotations

import errno
import logging
import re
import secrets

from flask import Flask, Response, g, jsonify, request
from pyogrio.errors import DataLayerError, DataSourceError

log = logging.getLogger(__name__)

#: Longest query string a request may carry (characters).
MAX_QUERY = 8000
#: Seconds a client is asked to wait after a 503 or 507 for lack of memory or disk.
RETRY_AFTER_S = 5

TILE_HOSTS = {
    "none": [],
    "osm": ["https://tile.openstreetmap.org"],
    "tianditu": ["https://t0.tianditu.gov.cn", "https://t1.tianditu.gov.cn", "https://t2.tianditu.gov.cn",
                 "https://t3.tianditu.gov.cn"],
    "amap": ["https://webrd01.is.autonavi.com", "https://webrd02.is.autonavi.com",
             "https://webrd03.is.autonavi.com", "https://webrd04.is.autonavi.com"],
}


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


_SCRIPT_TAG = re.compile(r"<script(?![^>]*\bnonce=)(?=[\s>])", re.IGNORECASE)


def add_nonce(html: str) -> str:
    """Give every ``<script>`` tag in ``html`` this request's nonce."""
    return _SCRIPT_TAG.sub(f'<script nonce="{csp_nonce()}"', html)


def _policy(app: Flask) -> str:
    name = app.config.get("BASEMAP", "none")
    if name == "auto":  # as web.basemap.basemap_name resolves it
        name = "tianditu" if app.config.get("TIANDITU_KEY") else "amap"
    tiles = " ".join(TILE_HOSTS.get(name, []))
    nonce = g.get("csp_nonce")
    script = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return ("default-src 'self'; "
            f"script-src {script}; "
            "style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {tiles}".rstrip() + "; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; "
            "base-uri 'self'; form-action 'self'; object-src 'none'")


def _error(status: int, message: str, **extra: object) -> Response:
    response = jsonify({"error": {"status": status, "message": message, **extra}})
    response.status_code = status
    if status in (503, 507):
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _query_too_long() -> Response | None:
    if len(request.query_string) <= MAX_QUERY:
        return None
    return _error(414, f"the query string is {len(request.query_string)} characters; at most {MAX_QUERY} are "
                       "allowed", parameter="query", allowed={"max_length": MAX_QUERY})


def _out_of_memory(err: MemoryError) -> Response:
    log.warning("%s %s ran out of its memory ceiling", request.method, request.path)
    return _error(503, "this request needs more memory than one request may use; narrow it (a district, fewer "
                       "sites, a smaller page) or retry later")


#: How the libraries that write files (GDAL through pyogrio, SQLite for GeoPackage) say the disk is full.
_DISK_FULL_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says the disk or the quota is full."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(seen).lower() for words in _DISK_FULL_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _disk_full(err: Exception) -> Response:
    if not is_disk_full(err):  # any other error of these kinds is unexpected, answered as in web.errors
        log.exception("unexpected error")
        return _error(500, "internal error")
    log.warning("%s %s: no space left for temporary files", request.method, request.path)
    return _error(507, "the server has no space left for this request's temporary files; retry later")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.before_request(_query_too_long)
    app.register_error_handler(MemoryError, _out_of_memory)
    for kind in (OSError, DataSourceError, DataLayerError):  # file writers: the OS, and GDAL's through pyogrio
        app.register_error_handler(kind, _disk_full)

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", _policy(app))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.path.startswith("/api/admin"):
            response.headers["Cache-Control"] = "no-store"
        return response
