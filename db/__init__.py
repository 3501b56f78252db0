"""The database module: engine creation, migrations and the table definitions.

Importing this module creates nothing: engines are built by :func:`make_engine`
from a URL the caller chooses (``DATABASE_URL``, or the private cluster's).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseConfigError(RuntimeError):
    """No database URL could be found."""


def default_url(database: str = "minsheng") -> str:
    """``DATABASE_URL`` when set, else the private cluster's URL for ``database``."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    state_file = REPO / "var" / "pgcluster.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        return f"postgresql://minsheng@127.0.0.1:{state['port']}/{database}"
    raise DatabaseConfigError(
        "no database: set DATABASE_URL, or run `make demo` / "
        "`python3 scripts/pgcluster.py ensure` to start the private PostGIS cluster")


def sa_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL, pinned to the psycopg2 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """The libpq form of a URL (for psql, pg_dump, ogr2ogr)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def make_engine(url: str, **kw) -> Engine:
    """An engine with short connect timeouts, so an outage is reported quickly."""
    url = sa_url(url)
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 5)
    kw.setdefault("max_overflow", 10)
    kw.setdefault("connect_args", {"connect_timeout": 3, "application_name": "minsheng-map"})
    return create_engine(url, **kw)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sa_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
