#!/usr/bin/env python3
"""A private PostgreSQL + PostGIS cluster owned by the project.

Standard library only, so it runs before the virtualenv exists.

    python3 scripts/pgcluster.py ensure [--db NAME ...]   # install/init/start, print URL of the first db
    python3 scripts/pgcluster.py stop
    python3 scripts/pgcluster.py status
    python3 scripts/pgcluster.py url [--db NAME]

The data directory lives under ``var/pgdata`` (``PGCLUSTER_DIR`` overrides),
the server listens on 127.0.0.1 only, on a free port remembered in
``var/pgcluster.json``. No systemd. As root the server runs as the
``postgres`` system user (PostgreSQL refuses to run as root); as an ordinary
user it runs as that user. If the distribution's PostgreSQL or PostGIS
packages are missing they are installed with apt-get when that is allowed
(root, or password-less sudo); otherwise the exact command is printed.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var"
STATE = VAR / "pgcluster.json"
SUPERUSER = "minsheng"


def log(msg: str) -> None:
    print(f"[pgcluster] {msg}", file=sys.stderr, flush=True)


def fail(msg: str) -> None:
    log(f"ERROR: {msg}")
    sys.exit(1)


# --- packages -----------------------------------------------------------------

def _postgis_versions() -> list[str]:
    """PostgreSQL major versions that have both server binaries and PostGIS."""
    found = []
    for control in glob.glob("/usr/share/postgresql/*/extension/postgis.control"):
        ver = Path(control).parts[-3]
        if Path(f"/usr/lib/postgresql/{ver}/bin/postgres").exists():
            found.append(ver)
    return sorted(found, key=lambda v: float(v), reverse=True)


def _server_versions() -> list[str]:
    vers = [Path(p).parts[-3] for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    return sorted(vers, key=lambda v: float(v), reverse=True)


def _apt_prefix() -> list[str] | None:
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


_APT_UPDATED = False


def apt_install(packages: list[str]) -> None:
    """Install Debian packages, or stop with the exact command to run."""
    global _APT_UPDATED
    prefix = _apt_prefix()
    cmd = "apt-get install -y " + " ".join(packages)
    if prefix is None:
        fail(f"missing system packages. Please run (as root):\n    apt-get update && {cmd}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _APT_UPDATED:
        log("apt-get update")
        subprocess.run(prefix + ["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        _APT_UPDATED = True
    log(f"installing {' '.join(packages)}")
    subprocess.run(prefix + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _has_pgrouting(ver: str) -> bool:
    return Path(f"/usr/share/postgresql/{ver}/extension/pgrouting.control").exists()


def ensure_packages() -> str:
    """Return the PostgreSQL major version to use, installing packages if needed.

    The version needs PostGIS and pgRouting (road networks). A cluster made
    before pgRouting was required gets the package on its next ``ensure``.
    """
    vers = _postgis_versions()
    if not vers:
        if not _server_versions():
            apt_install(["postgresql", "postgresql-contrib"])
        ver = _server_versions()[0]
        apt_install([f"postgresql-{ver}-postgis-3"])
        vers = _postgis_versions()
        if not vers:
            fail(f"PostGIS for PostgreSQL {ver} is still missing after installing postgresql-{ver}-postgis-3")
    ver = _state().get("version") or vers[0]
    if not _has_pgrouting(ver):
        apt_install([f"postgresql-{ver}-pgrouting"])
        if not _has_pgrouting(ver):
            fail(f"pgRouting for PostgreSQL {ver} is still missing after installing postgresql-{ver}-pgrouting")
    return vers[0]


# --- cluster ------------------------------------------------------------------

def _state() -> dict:
    if STATE.exists():
        return json.loads(STATE.read_text())
    return {}


def _save_state(state: dict) -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=2))


def _free_port() -> int:
    start = 54320 + int(hashlib.sha1(str(REPO).encode()).hexdigest(), 16) % 600
    for port in list(range(start, start + 200)) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    fail("no free TCP port on 127.0.0.1")
    return 0


def _run_user() -> str | None:
    """The system user the server runs as when we are root (None otherwise)."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd
        pwd.getpwnam("postgres")
        return "postgres"
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                       check=True)
        return "postgres"


def _as_user(user: str | None, argv: list[str], **kw) -> subprocess.CompletedProcess:
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, **kw)


def _datadir(user: str | None) -> Path:
    """``var/pgdata``, or a private directory elsewhere when root's checkout is not
    reachable by the server's user (then ``var/pgdata`` links to it)."""
    if os.environ.get("PGCLUSTER_DIR"):
        return Path(os.environ["PGCLUSTER_DIR"])
    target = VAR / "pgdata"
    if target.is_symlink() or target.exists():
        return target.resolve()
    if user is None:
        return target
    VAR.mkdir(parents=True, exist_ok=True)
    probe = VAR / ".probe"
    probe.mkdir(exist_ok=True)
    shutil.chown(probe, user)
    ok = _as_user(user, ["test", "-w", str(probe)], capture_output=True).returncode == 0
    probe.rmdir()
    if ok:
        return target
    tag = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
    outside = Path("/var/tmp") / f"minsheng-pgdata-{tag}"
    log(f"the checkout is not reachable by user {user}; keeping the data in {outside} (linked from var/pgdata)")
    target.symlink_to(outside)
    return outside


def _bindir(ver: str) -> Path:
    return Path(f"/usr/lib/postgresql/{ver}/bin")


def init_cluster(ver: str) -> dict:
    user = _run_user()
    datadir = _datadir(user)
    state = _state()
    if (datadir / "PG_VERSION").exists():
        return state
    log(f"initialising a private PostgreSQL {ver} cluster in {datadir}")
    datadir.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(datadir, user)
    os.chmod(datadir, 0o700)
    res = _as_user(user, [str(_bindir(ver) / "initdb"), "-D", str(datadir), "-U", SUPERUSER,
                          "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"],
                   capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"initdb failed:\n{res.stdout}\n{res.stderr}")
    port = _free_port()
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write("\n# Minsheng Map private cluster\n"
                   f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                   "fsync = on\nshared_buffers = 256MB\nwork_mem = 32MB\nmaintenance_work_mem = 256MB\n"
                   "max_connections = 200\nlogging_collector = off\n")
    state = {"version": ver, "port": port, "datadir": str(datadir), "user": user}
    _save_state(state)
    return state


def _logfile(state: dict) -> Path:
    return Path(state["datadir"]) / "server.log"


def is_running(state: dict) -> bool:
    if not state:
        return False
    res = _as_user(state.get("user"), [str(_bindir(state["version"]) / "pg_ctl"), "-D", state["datadir"], "status"],
                   capture_output=True)
    return res.returncode == 0


def start(state: dict) -> None:
    if is_running(state):
        return
    log(f"starting PostgreSQL on 127.0.0.1:{state['port']}")
    res = _as_user(state.get("user"), [str(_bindir(state["version"]) / "pg_ctl"), "-D", state["datadir"],
                                       "-l", str(_logfile(state)), "-w", "-t", "60", "start"],
                   capture_output=True, text=True)
    if res.returncode != 0:
        tail = ""
        if _logfile(state).exists():
            tail = "\n".join(_logfile(state).read_text(errors="replace").splitlines()[-20:])
        fail(f"the server did not start:\n{res.stdout}{res.stderr}\n{tail}")


def stop(state: dict) -> None:
    if not is_running(state):
        log("not running")
        return
    _as_user(state.get("user"), [str(_bindir(state["version"]) / "pg_ctl"), "-D", state["datadir"],
                                 "-m", "fast", "-w", "stop"], check=True, capture_output=True)
    log("stopped")


def url(state: dict, db: str) -> str:
    return f"postgresql://{SUPERUSER}@127.0.0.1:{state['port']}/{db}"


def _psql(state: dict, db: str, sql: str) -> str:
    psql = _bindir(state["version"]) / "psql"
    res = subprocess.run([str(psql), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url(state, db), "-c", sql],
                         capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"psql failed on {db}: {res.stderr.strip()}")
    return res.stdout.strip()


def ensure_database(state: dict, db: str) -> None:
    exists = _psql(state, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}'")
    if exists != "1":
        log(f"creating database {db}")
        _psql(state, "postgres", f'CREATE DATABASE "{db}"')
    _psql(state, db, "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pg_trgm;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["ensure", "stop", "status", "url"])
    parser.add_argument("--db", action="append", default=[], help="database name(s) to create")
    parser.add_argument("--state", default=os.environ.get("PGCLUSTER_STATE"),
                        help="state file (default var/pgcluster.json); with PGCLUSTER_DIR it makes a separate "
                             "throw-away cluster, e.g. for the outage test")
    args = parser.parse_args(argv)
    if args.state:
        global STATE, VAR
        STATE = Path(args.state).resolve()
        VAR = STATE.parent
    dbs = [d for d in args.db if d] or ["minsheng"]
    for d in dbs:
        if not d.replace("_", "").isalnum():
            fail(f"database name {d!r} must be letters, digits and underscores")
    if args.command == "ensure":
        ver = ensure_packages()
        state = init_cluster(ver)
        start(state)
        for d in dbs:
            ensure_database(state, d)
        print(url(state, dbs[0]))
    elif args.command == "stop":
        stop(_state())
    elif args.command == "status":
        state = _state()
        print("running" if is_running(state) else "stopped")
        return 0 if is_running(state) else 3
    elif args.command == "url":
        state = _state()
        if not state:
            fail("no cluster yet: run `python3 scripts/pgcluster.py ensure`")
        print(url(state, dbs[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
