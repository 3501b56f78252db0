"""Whole databases: dump and restore archives, create and drop databases, point the home database at one.

The SQL functions take a :class:`~sqlalchemy.engine.Connection` in autocommit
mode (``CREATE DATABASE`` and ``DROP DATABASE`` cannot run in a transaction).
Database names are never bound parameters in PostgreSQL, so every name is
checked against :data:`NAME` and quoted by the dialect before it reaches SQL.
The archives are ``pg_dump --format=custom`` files, made and read by the
newest ``pg_dump``/``pg_restore`` on the machine (never older than the server).
"""
from __future__ import annotations

import glob
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db import SERVING_SETTING, libpq_url

#: Names of the databases this module creates or drops.
NAME = re.compile(r"[A-Za-z0-9_]{1,63}")
#: Seconds a dump or a restore may take before it is given up.
TOOL_TIMEOUT_S = 3600


class DatabaseToolError(RuntimeError):
    """pg_dump or pg_restore failed, or a name or archive was refused; the message says which and why."""


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise DatabaseToolError(f"database name {name!r} must be 1 to 63 letters, digits and underscores")
    return name


def _quoted(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(_name(name)))


# ------------------------------------------------------------------ archives
def pg_tool(name: str) -> str:
    """The newest ``name`` (pg_dump, pg_restore) among PATH and /usr/lib/postgresql/*/bin."""
    candidates = [p for p in [shutil.which(name), *glob.glob(f"/usr/lib/postgresql/*/bin/{name}")] if p]
    best, best_major = None, -1
    for path in candidates:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        found = re.search(r"(\d+)(?:\.\d+)*", out)
        if found and int(found.group(1)) > best_major:
            best, best_major = path, int(found.group(1))
    if best is None:
        raise DatabaseToolError(f"{name} not found: install postgresql-client")
    return best


def _run(argv: list[str], what: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    if res.returncode != 0:
        raise DatabaseToolError(f"{what} failed: {res.stderr.strip()[-1500:]}")


def dump(url: str, path: Path) -> None:
    """Write the database ``url`` to the custom-format archive ``path`` (via ``path.part``, renamed at the end)."""
    part = path.with_name(path.name + ".part")
    _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={part}",
          f"--dbname={libpq_url(url)}"], "pg_dump")
    part.rename(path)


def check_archive(path: Path) -> None:
    """Raise unless ``path`` is a readable pg_dump custom-format archive."""
    if not path.is_file():
        raise DatabaseToolError(f"no such backup file: {path}")
    _run([pg_tool("pg_restore"), "--list", str(path)], f"reading {path} as a pg_dump archive")


def restore_archive(url: str, path: Path) -> None:
    """Restore the archive ``path`` into the (empty) database ``url``, all or nothing."""
    _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
          f"--dbname={libpq_url(url)}", str(path)], f"pg_restore of {path}")


# ------------------------------------------------------------------ databases
_GENERATIONS = text("SELECT datname FROM pg_database WHERE datname ~ :pattern ORDER BY datname")
_BACKENDS = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()")
_EXISTS = text("SELECT 1 FROM pg_database WHERE datname = :name")


def generations(conn: Connection, home: str) -> list[tuple[int, str]]:
    """``(number, name)`` of the restored databases of ``home`` (named ``<home>_r<number>``), oldest first."""
    pattern = "^" + re.escape(_name(home)) + r"_r[0-9]+$"
    names = conn.execute(_GENERATIONS, {"pattern": pattern}).scalars().all()
    return sorted((int(n.rsplit("_r", 1)[1]), str(n)) for n in names)


def exists(conn: Connection, name: str) -> bool:
    return conn.execute(_EXISTS, {"name": name}).first() is not None


def backends(conn: Connection, name: str) -> int:
    """Sessions connected to database ``name`` (other than this one)."""
    return int(conn.execute(_BACKENDS, {"name": name}).scalar_one())


def create_database(conn: Connection, name: str) -> None:
    """An empty database from ``template0`` (which nobody can be connected to)."""
    conn.execute(text(f"CREATE DATABASE {_quoted(conn, name)} TEMPLATE template0 ENCODING 'UTF8'"))


def drop_database(conn: Connection, name: str, *, force: bool = False) -> None:
    """Drop ``name`` if it exists; ``force`` ends the sessions still connected to it first."""
    conn.execute(text(f"DROP DATABASE IF EXISTS {_quoted(conn, name)}" + (" WITH (FORCE)" if force else "")))


def point_home_to(conn: Connection, home: str, target: str) -> None:
    """Make the home database serve ``target`` from now on (read by :func:`db.serving_database`)."""
    conn.execute(text(f"ALTER DATABASE {_quoted(conn, home)} SET {SERVING_SETTING} = '{_name(target)}'"))
