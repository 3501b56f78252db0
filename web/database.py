"""The app's database engine, made on first use (no import-time state).

The engine follows restores: :class:`db.ServingEngine` re-reads which database
serves at most once a second and moves to the new one when a restore switched
it, disposing the old pool (no restart, no stale connections).
"""
from __future__ import annotations

import threading

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from db import ServingEngine

#: How often each worker re-reads which database serves (seconds).
RECHECK_S = 1.0


def get_engine() -> Engine:
    """The engine of the database serving now (``app.extensions["engine"]`` is the same one)."""
    serving = current_app.extensions.get("serving")
    if serving is None:
        with current_app.extensions["serving_lock"]:
            serving = current_app.extensions.get("serving")
            if serving is None:
                serving = ServingEngine(current_app.config["DATABASE_URL"], recheck_s=RECHECK_S)
                current_app.extensions["serving"] = serving
    engine = serving.get()
    current_app.extensions["engine"] = engine
    return engine


def init_app(app: Flask) -> None:
    app.extensions.setdefault("serving", None)
    app.extensions.setdefault("serving_lock", threading.Lock())
    app.extensions.setdefault("engine", None)
