"""Backup and restore as service operations: the app keeps serving through them.

A restore never touches the database that is serving. It loads the backup
into a fresh database (``<home>_r<n>``), brings its schema up to date, checks
it answers a spatial query as requests make them, and only then points the
home database (the one ``DATABASE_URL`` names) at it. Every worker re-reads
that pointer at most once a second (:class:`db.ServingEngine`) and moves to
the new database, so requests see the old data until the switch and the new
data after it, with no error between. A slow reader (a long download) keeps
its connection to the old database, which blocks nothing: the old database is
dropped once nobody uses it, or by the next restore. Cached results carry the
restore epoch (:mod:`db.versions`), so nothing computed from the old data is
served after the switch.

The home database keeps the data it had before the first restore; after
that, :func:`serving` names the database that holds the live data.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from db import database_name, live_url, make_engine, migrate, serving_database, spatial_check, with_database
from db import restore as db_restore
from services.errors import InvalidRequest

#: Seconds a restore waits for the old database's sessions to end before leaving it for the next restore.
DRAIN_S = 30.0
#: Seconds every worker needs to notice a switch (``web.database.RECHECK_S``, with a margin).
SWITCH_S = 2.0


@dataclass
class RestoreReport:
    """What a restore did: the database now serving, the one before it, what was dropped or kept."""

    file: str
    serving: str
    previous: str
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _admin(url: str) -> Callable[[], Connection]:
    """Autocommit connections to the home database (for CREATE/DROP/ALTER DATABASE)."""
    engine = make_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    return engine.connect


def serving(url: str) -> str:
    """The name of the database that serves for ``url`` now."""
    return database_name(live_url(url))


def backup(url: str, directory: Path) -> Path:
    """Dump the database serving for ``url`` into ``directory/minsheng-<UTC time>.dump``; returns its path.

    Raises
    ------
    InvalidRequest
        When pg_dump fails (the message says why).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"minsheng-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}.dump"
    try:
        db_restore.dump(live_url(url), path)
    except db_restore.DatabaseToolError as exc:
        raise InvalidRequest(str(exc), parameter="DATABASE_URL") from None
    return path


def restore(url: str, archive: Path, *, drain_s: float = DRAIN_S, echo: Callable[[str], None] = print) -> RestoreReport:
    """Restore ``archive`` for the home database ``url`` while the app keeps serving (see the module docstring).

    Raises
    ------
    InvalidRequest
        The archive is missing or unreadable, or the restored database fails its checks; the serving
        database is then untouched and the half-made one dropped.
    """
    start = time.monotonic()
    try:
        db_restore.check_archive(archive)
    except db_restore.DatabaseToolError as exc:
        raise InvalidRequest(str(exc), parameter="FILE") from None
    home = database_name(url)
    connect = _admin(url)
    with connect() as conn:
        previous = serving_database(conn) or home
        done = db_restore.generations(conn, home)
        target = _target_name(home, (done[-1][0] if done else 0) + 1)
        leftovers = [name for _, name in done if name != previous]
        for name in leftovers:  # superseded by an earlier restore and given a whole restore's time to drain
            db_restore.drop_database(conn, name, force=True)
        db_restore.create_database(conn, target)
    echo(f"restoring {archive} into {target} (serving: {previous})")
    _fill(connect, with_database(url, target), archive, target)
    with connect() as conn:
        db_restore.point_home_to(conn, home, target)
    echo(f"{target} serves now; waiting for sessions on {previous} to end")
    report = RestoreReport(str(archive), target, previous, dropped=leftovers)
    _retire(connect, previous, home, drain_s, report)
    report.seconds = round(time.monotonic() - start, 1)
    return report


def _target_name(home: str, number: int) -> str:
    suffix = f"_r{number}"
    return home[:63 - len(suffix)] + suffix


def _fill(connect: Callable[[], Connection], target_url: str, archive: Path, target: str) -> None:
    """Restore, migrate and check the new database; drop it if any step fails."""
    try:
        db_restore.restore_archive(target_url, archive)
        migrate(target_url)
        engine = make_engine(target_url, poolclass=NullPool)
        try:
            spatial_check(engine)
        finally:
            engine.dispose()
    except Exception as exc:
        with connect() as conn:
            db_restore.drop_database(conn, target, force=True)
        raise InvalidRequest(f"the restored database failed its checks and was dropped (the serving one is "
                             f"untouched): {str(exc).splitlines()[0][:1500]}", parameter="FILE") from None


def _retire(connect: Callable[[], Connection], previous: str, home: str, drain_s: float,
            report: RestoreReport) -> None:
    """Wait for the workers to switch and the old database's sessions to end; drop it (never the home one)."""
    time.sleep(SWITCH_S)
    if previous == home:
        report.kept.append(previous)
        return
    deadline = time.monotonic() + drain_s
    with connect() as conn:
        while db_restore.backends(conn, previous) and time.monotonic() < deadline:
            time.sleep(0.5)
        try:
            if db_restore.backends(conn, previous):
                raise db_restore.DatabaseToolError(f"{previous} is still in use")
            db_restore.drop_database(conn, previous)
            report.dropped.append(previous)
        except (db_restore.DatabaseToolError, DBAPIError):
            report.kept.append(previous)  # still read (a long download): the next restore drops it
