"""The database module: engine creation, migrations, and which database serves.

Importing this module creates nothing: engines are built by :func:`make_engine`
from a URL the caller chooses (``DATABASE_URL``, or the private cluster's).

A restore (:mod:`services.ops`) loads a backup into a fresh database and then
points the database named in the URL (the *home* database) at it, with the
database-level setting ``minsheng.serving``. :func:`live_url` follows that
pointer; :class:`ServingEngine` follows it while the app runs, so a restore
switches every worker to the new data without a restart.
"""
from __future__ import annotations

import json
import os
import re
import select
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.pool import NullPool

from geo.crs import WGS84_EPSG

if TYPE_CHECKING:
    from alembic.config import Config

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


def with_database(url: str, database: str) -> str:
    """``url`` with its database name replaced by ``database`` (same server, user and options)."""
    return make_url(sa_url(url)).set(database=database).render_as_string(hide_password=False)


def database_name(url: str) -> str:
    """The database name in ``url``."""
    return str(make_url(sa_url(url)).database)


def make_engine(url: str, **kw) -> Engine:
    """An engine with short connect timeouts, so an outage is reported quickly.

    A pooled connection the server has ended is discarded when it is checked
    out (:func:`discard_if_ended`), without the round trip of SQLAlchemy's
    ``pool_pre_ping`` (a ``SELECT 1`` before every request's first statement).
    """
    url = sa_url(url)
    if "poolclass" not in kw:
        kw.setdefault("pool_size", 5)
        kw.setdefault("max_overflow", 10)
    kw.setdefault("connect_args", {"connect_timeout": 3, "application_name": "minsheng-map"})
    engine = create_engine(url, **kw)
    event.listen(engine, "checkout", discard_if_ended)
    return engine


def discard_if_ended(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout: refuse a connection the server has ended, so the pool connects afresh.

    An idle connection has nothing to read: the server only speaks when asked.
    A server that ended it (a shutdown or restart, ``pg_terminate_backend``, an
    idle timeout) has sent its last message and closed the socket, so the socket
    reads as ready. Checking that is a system call, not a round trip to the
    server. A connection lost after the check meets its error on its first
    statement, as it would after a ping (a 503, and the connection is dropped).

    Raises
    ------
    sqlalchemy.exc.DisconnectionError
        When the connection is closed or the server has spoken unasked; the
        pool then replaces it (SQLAlchemy's documented pessimistic check).
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the pooled connection is closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise DisconnectionError("the server ended the pooled connection")


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # imported when migrating, not by every process that imports db (0.5 s)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sa_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` to the database ``url`` serves (:func:`live_url`)."""
    from alembic import command
    command.upgrade(alembic_config(live_url(url)), revision)


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


#: A spatial query on the live schema, as requests make them: it fails when theirs would (e.g. a pooled
#: connection that lost its PostGIS operators), not only when the server is down.
_SPATIAL_CHECK = text("SELECT count(*) FROM district WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), "
                      ":srid))")
_SPATIAL_CHECK_DRIVER = re.sub(r"(?<![:\w]):([a-z_]\w*)", r"%(\1)s", _SPATIAL_CHECK.text)
#: Where the spatial check looks: Zaozhuang's centre, WGS-84 degrees.
_CHECK_POINT = (117.32, 34.81)


def spatial_check(engine: Engine) -> int:
    """Districts covering the city centre (1 on a loaded database); raises what a request would meet.

    One round trip (:func:`read_alone`): no BEGIN and no ROLLBACK around it.
    """
    with engine.connect() as conn:
        _, rows = read_alone(conn, _SPATIAL_CHECK_DRIVER, {"lon": _CHECK_POINT[0], "lat": _CHECK_POINT[1],
                                                           "srid": WGS84_EPSG})
        return int(rows[0][0])


def read_alone(conn: Connection, statement: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Column names and rows of one read-only statement, run by the driver in autocommit.

    The request's first statement needs no transaction: without one no BEGIN
    and no ROLLBACK go to the server, two round trips of the three a pooled
    read otherwise costs. ``conn`` must have no transaction open (a later
    statement on it begins one as usual).

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        What SQLAlchemy raises for the same driver error (e.g. ``OperationalError``
        when the server ended the connection), so callers meet one family of
        errors; a lost connection is invalidated (it never returns to the pool)
        and the error says so (``connection_invalidated``).
    """
    driver = conn.connection.dbapi_connection
    if driver is None:
        raise RuntimeError("the connection has no DBAPI connection")
    try:
        driver.autocommit = True
        cursor = driver.cursor()
        try:
            cursor.execute(statement, params)
            return [d[0] for d in cursor.description], list(cursor.fetchall())
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as err:
        raise _wrapped(conn, driver, statement, params, err) from err
    finally:
        if not driver.closed:
            driver.autocommit = False


def _wrapped(conn: Connection, driver: Any, statement: str, params: dict[str, Any], err: Any) -> StatementError:
    """The SQLAlchemy error for a driver error met outside SQLAlchemy, the connection invalidated when lost."""
    lost = conn.dialect.is_disconnect(err, driver, None)
    if lost:
        conn.invalidate(err)
    return DBAPIError.instance(statement, params, err, conn.dialect.loaded_dbapi.Error,
                               connection_invalidated=lost, dialect=conn.dialect)


# ------------------------------------------------------------------ which database serves
#: The database-level setting on the home database naming the database that serves in its place.
SERVING_SETTING = "minsheng.serving"
_SERVING = text(
    "SELECT split_part(c, '=', 2) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0"
    " AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND c LIKE :prefix")


def serving_database(conn: Connection) -> str | None:
    """The database a restore pointed this (home) database at, or None when it serves itself."""
    return conn.execute(_SERVING, {"prefix": SERVING_SETTING + "=%"}).scalar()


def live_url(url: str) -> str:
    """The URL of the database that serves for ``url``: ``url`` itself until a restore points it elsewhere."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            target = serving_database(conn)
    finally:
        engine.dispose()
    return with_database(url, target) if target else url


class ServingEngine:
    """The engine of the database that serves for the home database ``url``, following restores.

    :meth:`get` reads the home database's pointer at most every ``recheck_s``
    seconds (one small query on a connection of its own). When a restore has
    moved it, later calls get an engine on the new database and the old
    engine's pool is disposed: requests already running finish on the old
    database, which the restore keeps until they have. If the pointer cannot
    be read (the server is down), the current engine stays and the request
    meets the outage itself (or, before the first read, the read's error).
    """

    def __init__(self, url: str, *, recheck_s: float = 1.0, **engine_kw: Any) -> None:
        self.url = url
        self.recheck_s = recheck_s
        self._engine_kw = engine_kw
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._known = False
        self._database = database_name(url)
        self._engine = make_engine(url, **engine_kw)
        self._pointer = make_engine(url, pool_size=1, max_overflow=1)

    def get(self) -> Engine:
        """The engine to use now.

        Until the pointer has been read once, every call reads it and raises
        the database's error when it cannot (the home database may hold no
        data at all, so it is never served by guess).
        """
        if self._known and time.monotonic() < self._next_check:
            return self._engine
        with self._lock:
            if not self._known or time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + self.recheck_s
                self._follow()
        return self._engine

    def _follow(self) -> None:
        try:
            with self._pointer.connect() as conn:
                target = serving_database(conn) or database_name(self.url)
        except Exception:
            if not self._known:
                raise
            return  # an unreadable pointer leaves the current database serving; the request meets the outage
        self._known = True
        if target != self._database:
            old = self._engine
            self._engine = make_engine(with_database(self.url, target), **self._engine_kw)
            self._database = target
            old.dispose()

    def dispose(self) -> None:
        self._engine.dispose()
        self._pointer.dispose()
