"""Security headers on every response.

The Content-Security-Policy allows scripts, styles, fonts and images from the
app itself only (plus the configured basemap tile host for images). Inline
scripts need the per-request nonce: templates write
``<script nonce="{{ csp_nonce() }}">``; :func:`add_nonce` stamps it on HTML
made by other tools (Folium).
"""
from __future__ import annotations

import re
import secrets

from flask import Flask, g, request

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
    tiles = " ".join(TILE_HOSTS.get(app.config.get("BASEMAP", "none"), []))
    nonce = g.get("csp_nonce")
    script = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return ("default-src 'self'; "
            f"script-src {script}; "
            "style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {tiles}".rstrip() + "; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'; "
            "base-uri 'self'; form-action 'self'; object-src 'none'")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", _policy(app))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.path.startswith("/api/admin"):
            response.headers["Cache-Control"] = "no-store"
        return response
