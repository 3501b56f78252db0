"""The app's database engine, made on first use (no import-time state)."""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from db import make_engine


def get_engine() -> Engine:
    engine = current_app.extensions.get("engine")
    if engine is None:
        engine = make_engine(current_app.config["DATABASE_URL"])
        current_app.extensions["engine"] = engine
    return engine


def init_app(app: Flask) -> None:
    app.extensions.setdefault("engine", None)
