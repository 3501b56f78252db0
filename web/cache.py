"""The HTML page cache: a rendered page is kept until the data changes, then rendered again.

Keying and invalidation are :func:`services.cache.memo`'s (the ``data_version``
rows the triggers bump, and today's date): the one cache scheme. What this
module adds is the page's per-request CSP nonce: a page is rendered once with
a placeholder where the nonce goes, and each request gets its own nonce put in
on the way out.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable

from flask import g
from sqlalchemy.engine import Engine

from services import cache as results_cache
from web.security import csp_nonce

_PLACEHOLDER = "nonce" + secrets.token_hex(12)


def cached_html(engine: Engine, namespace: str, key: Hashable, render: Callable[[], str]) -> str:
    """``render()``'s page from the cache (until the data changes), with this request's CSP nonce put in.

    ``namespace`` names the page and ``key`` holds everything else the page
    depends on (language, basemap, parameters).
    """
    def _render() -> str:
        real = g.pop("csp_nonce", None)
        g.csp_nonce = _PLACEHOLDER
        try:
            return render()
        finally:
            g.pop("csp_nonce", None)
            if real is not None:
                g.csp_nonce = real

    html = results_cache.memo(engine, "html:" + namespace, key, _render)
    return html.replace(_PLACEHOLDER, csp_nonce())
