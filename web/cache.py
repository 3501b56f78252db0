"""Per-process caches keyed on the data's version, so nothing stale is served.

Every change to facilities, the demand grid or the villages bumps a row of
``data_version`` in the same transaction (statement triggers, migration
0003). A cached value is keyed on those versions: after a load or an edit
commits, the next request recomputes. Pages are cached with a placeholder in
place of the per-request CSP nonce, which is filled in on the way out.
"""
from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

from flask import g
from sqlalchemy import text
from sqlalchemy.engine import Engine

from web.security import csp_nonce

T = TypeVar("T")

MAX_ENTRIES = 128
_PLACEHOLDER = "nonce" + secrets.token_hex(12)
_store: "OrderedDict[tuple, object]" = OrderedDict()
_lock = threading.Lock()


def versions(engine: Engine) -> tuple:
    """The current (facility, grid) data versions, and today's date (facilities open on a date)."""
    with engine.connect() as conn:
        found = tuple(conn.execute(text("SELECT version FROM data_version ORDER BY name")).scalars().all())
    return found + (dt.date.today().isoformat(),)


def memo(engine: Engine, namespace: str, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, remembered until the data changes (LRU of ``MAX_ENTRIES``)."""
    full = (str(engine.url), namespace, key, versions(engine))
    with _lock:
        if full in _store:
            _store.move_to_end(full)
            return _store[full]  # type: ignore[return-value]
    value = compute()
    with _lock:
        _store[full] = value
        while len(_store) > MAX_ENTRIES:
            _store.popitem(last=False)
    return value


def cached_html(engine: Engine, namespace: str, key: Hashable, render: Callable[[], str]) -> str:
    """A rendered page from the cache, with this request's CSP nonce put in."""
    def _render() -> str:
        real = g.pop("csp_nonce", None)
        g.csp_nonce = _PLACEHOLDER
        try:
            return render()
        finally:
            g.pop("csp_nonce", None)
            if real is not None:
                g.csp_nonce = real

    html = memo(engine, "html:" + namespace, key, _render)
    return html.replace(_PLACEHOLDER, csp_nonce())


def clear() -> None:
    with _lock:
        _store.clear()
