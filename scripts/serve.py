#!/usr/bin/env python3
"""The serving front: nginx before two lanes of workers, started and stopped like the database.

    python scripts/serve.py start [--port 5000]   # (re)start, wait until /healthz answers through nginx
    python scripts/serve.py stop
    python scripts/serve.py status

* **nginx** on 127.0.0.1:``PORT`` reads whole requests and whole responses
  before a worker sees or sends them (buffering to temporary files when they
  are large), so a slow client holds an nginx connection, never a worker's
  thread. Errors nginx makes itself (400, 408, 413, 414, 503 of a full lane)
  are JSON like the app's.
* **The light lane** (nearest, search, pages, tiles, health, everything not
  listed below): granian, ``--light-workers`` x ``--light-threads`` (why
  granian: ``web/lane.py``).
* **The heavy lane** (coverage, gaps, suggestions, the planner page, exports,
  OGC item pages over 999 features): gunicorn, ``--heavy-workers`` single-threaded
  workers at a lower CPU priority, and at most ``--heavy-limit`` requests in
  it at once: one more gets 503 JSON with ``Retry-After`` at once.

Every worker has a memory ceiling (``web/lane.py``). Files live in
``var/front`` (``MINSHENG_FRONT_DIR`` overrides): the nginx config, pid files,
logs and nginx's temporary files. Works as root (nginx's workers then run as
``nobody``) and as an ordinary user. Standard library only; granian and gunicorn
are run by the Python that runs this script (the project's virtualenv).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"
GRANIAN_LOG = REPO / "deploy" / "granian-log.json"
NGINX_CONF = REPO / "deploy" / "nginx.conf.in"
#: OGC item pages up to this many features stay in the light lane.
OGC_LIGHT_LIMIT = 999
#: Seconds the heavy lane asks a refused client to wait.
RETRY_AFTER_S = 5
#: Where nginx's own error answers live (internal locations; a request line that cannot be parsed has no
#: URI, so they are URIs, not named locations).
ERROR_URI = "/.front-error/"


def log(msg: str) -> None:
    print(f"[serve] {msg}", file=sys.stderr, flush=True)


def fail(msg: str) -> None:
    log(f"ERROR: {msg}")
    sys.exit(1)


def front_dir() -> Path:
    return Path(os.environ.get("MINSHENG_FRONT_DIR") or REPO / "var" / "front").resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int | None, *names: str) -> bool:
    """Whether ``pid`` is a live process whose command line mentions one of ``names`` (not a reused pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return any(name.encode() in cmdline for name in names)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- nginx config
def _lane_map() -> str:
    """nginx ``map`` blocks choosing the lane of a request from its path (and an OGC page's ``limit``)."""
    digits = len(str(OGC_LIGHT_LIMIT))
    return (
        "map $uri $lane_by_path {\n"
        "    ~^/api/(coverage|gaps|suggest)$ heavy;\n"
        "    ~^/planner heavy;\n"
        "    ~^/export/ heavy;\n"
        "    ~^/ogc/collections/[^/]+/items$ ogc;\n"
        "    default light;\n"
        "}\n"
        'map "$request_method:$lane_by_path:$arg_limit" $lane {\n'
        "    ~^(GET|HEAD):heavy: heavy;\n"
        f'    "~^(GET|HEAD):ogc:(0*[0-9]{{1,{digits}}})?$" light;\n'
        "    ~^(GET|HEAD):ogc: heavy;\n"
        "    default light;\n"
        "}\n")


#: Errors nginx answers itself, as JSON like the app's (status, message).
NGINX_ERRORS = {
    400: "the request could not be read (malformed, or its headers are too large)",
    408: "the request took too long to arrive",
    413: "the request body is too large",
    414: "the request line is too long: keep the URL under 8,000 characters",
    503: f"busy: heavy requests (coverage, gaps, suggestions, the planner page, exports, large OGC pages) run a "
         f"few at a time and all places are taken; retry in {RETRY_AFTER_S} s",
}
#: Statuses nginx itself gives (full lane, a worker that restarted) that reach the client as that 503.
BUSY = (502, 503, 504)


def _error_locations() -> str:
    out = []
    for status, message in NGINX_ERRORS.items():
        body = json.dumps({"error": {"status": status, "message": message}}).replace("'", "\\'")
        retry = f"        add_header Retry-After {RETRY_AFTER_S} always;\n" if status == 503 else ""
        out.append(f"    location = {ERROR_URI}{status} {{\n        internal;\n        default_type application/json;\n"
                   f"{retry}        return {status} '{body}';\n    }}\n")
    return "".join(out)


def nginx_config(state: dict) -> str:
    """The nginx configuration for ``state`` (ports, directories, lane sizes)."""
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    return NGINX_CONF.read_text().format(
        user=user, dir=state["dir"], tmp=state["tmp"], port=state["port"], light=state["light_port"],
        heavy=state["heavy_port"], heavy_limit=state["heavy_limit"], lane_map=_lane_map(),
        error_pages=" ".join([*(f"error_page {s} {ERROR_URI}{s};" for s in NGINX_ERRORS if s != 503),
                              f"error_page {' '.join(map(str, BUSY))} =503 {ERROR_URI}503;"]),
        error_locations=_error_locations())


def _temp_dir(base: Path) -> Path:
    """nginx's temporary files: under ``base`` unless root's checkout is closed to ``nobody``."""
    tmp = base / "tmp"
    if os.geteuid() != 0:
        return tmp
    probe = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-x", str(base)], capture_output=True)
    if probe.returncode == 0:
        return tmp
    outside = Path("/var/tmp") / f"minsheng-front-{hashlib.sha1(str(base).encode()).hexdigest()[:10]}"
    log(f"{base} is not reachable by nobody; nginx keeps its temporary files in {outside}")
    return outside


# --------------------------------------------------------------------------- processes
def lane_env(lane: str, threads: int) -> dict[str, str]:
    """The environment of ``lane``'s workers (``threads`` app threads each)."""
    # Few malloc arenas and one BLAS thread per worker: many workers share two cores, and what a worker
    # reserves counts against its memory ceiling.
    return dict(os.environ, MINSHENG_LANE=lane, MINSHENG_LANE_THREADS=str(threads), MALLOC_ARENA_MAX="2",
                OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def light_lane_argv(workers: int, threads: int, port: int, pid_file: Path | None = None) -> list[str]:
    """The light lane's server: granian, ``workers`` processes of ``threads`` app threads on 127.0.0.1:``port``.

    A worker that dies is started again; one that does not stop within 5 s of a stop is killed. No access
    log here: nginx's names every request with its lane and times (``access.log``).
    """
    argv = [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--runtime-threads", "1", "--http", "1", "--no-ws", "--respawn-failed-workers",
            "--workers-kill-timeout", "5", "--log-config", str(GRANIAN_LOG), "--no-access-log"]
    if pid_file is not None:
        argv += ["--pid-file", str(pid_file)]
    return [*argv, "web.lane:light_app"]


def _log_tail(path: Path) -> str:
    """The end of a lane's log (where its workers' errors are), empty when there is none yet."""
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def _await_pid_file(base: Path, lane: str, program: str, gone: Callable[[], bool], seconds: float) -> None:
    """Until ``lane``'s server has written its pid file (a stop finds the lane by it); fail with the end of the
    lane's log when ``gone()`` says the server has exited, or after ``seconds``."""
    pid_file = base / f"{lane}.pid"
    deadline = time.monotonic() + seconds
    while not pid_file.exists():
        if gone() or time.monotonic() > deadline:
            fail(f"{program} ({lane}) did not start: {_log_tail(base / f'{lane}.log')}")
        time.sleep(0.05)


def _light_lane(state: dict, workers: int, threads: int, port: int) -> None:
    base = Path(state["dir"])
    pid_file = base / "light.pid"
    pid_file.unlink(missing_ok=True)
    with open(base / "light.log", "ab") as out:
        proc = subprocess.Popen(light_lane_argv(workers, threads, port, pid_file), cwd=REPO,
                                env=lane_env("light", threads), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _await_pid_file(base, "light", "granian", lambda: proc.poll() is not None, 60)
    except SystemExit:
        if proc.poll() is None:  # no pid file, so a stop would not find it
            os.killpg(proc.pid, signal.SIGKILL)
        raise


def _heavy_lane(state: dict, workers: int, port: int) -> None:
    base = Path(state["dir"])
    pid_file = base / "heavy.pid"
    pid_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--workers", str(workers),
            "--threads", "1", "--bind", f"127.0.0.1:{port}", "--name", "minsheng-heavy",
            "--timeout", str(state["timeout"]), "--pid", str(pid_file),
            "--access-logfile", str(base / "heavy-access.log"), "--error-logfile", str(base / "heavy.log"),
            "--daemon", "web:create_app()"]
    res = subprocess.run(argv, cwd=REPO, env=lane_env("heavy", 1), capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        fail(f"gunicorn (heavy) did not start: {res.stderr[-2000:]}")
    # The daemon writes its pid file a moment after the command returns: until then a stop could not find it.
    _await_pid_file(base, "heavy", "gunicorn", lambda: False, 30)


#: What each process's command line says (a pid file can outlive its process, and the pid be reused).
#: (A light lane started before it moved to granian ran under gunicorn: a stop still stops it.)
PROGRAMS = {"nginx": ("nginx",), "light": ("granian", "gunicorn"), "heavy": ("gunicorn",)}


def nginx_binary() -> str | None:
    """nginx on PATH, or Debian's /usr/sbin/nginx (not on an ordinary user's PATH)."""
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def _nginx(state: dict) -> None:
    base = Path(state["dir"])
    conf = base / "nginx.conf"
    conf.write_text(nginx_config(state))
    argv = [str(nginx_binary()), "-e", str(base / "error.log"), "-p", str(base), "-c", str(conf)]
    res = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        fail(f"the nginx configuration {conf} is not valid: {res.stderr.strip()}")
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        fail(f"nginx did not start: {res.stderr.strip()}")


def _answers(port: int, path: str = "/healthz") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


def _wait(port: int, what: str, lane: str | None = None, seconds: float = 120.0) -> None:
    """Until /healthz answers on ``port``; fail at once, with the end of its log, if ``lane``'s server exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(port):
            return
        if lane and not _alive(_read_pid(front_dir() / f"{lane}.pid"), *PROGRAMS[lane]):
            log_file = front_dir() / f"{lane}.log"
            fail(f"{what} stopped before it answered (its workers could not start); the end of {log_file}:\n"
                 f"{_log_tail(log_file)}")
        time.sleep(0.3)
    fail(f"{what} did not answer /healthz on 127.0.0.1:{port} within {seconds:.0f} s; see {front_dir()}/*.log")


#: What a light worker's log line says once it has read what nearest needs (or found it cannot): web/lane.py.
HELD_WORDS = ("nearest facilities held in", "nearest facilities not held")


def _wait_held(light_log: Path, since: int, workers: int, seconds: float = 90.0) -> None:
    """Until every light worker has said what it holds, so the first clicks do not wait for it (on the demo
    city a worker reads the facilities and both road networks in about a second, 5 s while six workers start
    at once on two cores). Past ``seconds`` the front is left serving, with a warning."""
    if os.environ.get("MINSHENG_HOLD_INPUTS", "1") == "0":
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(light_log, "rb") as f:
            f.seek(since)
            said = f.read().decode(errors="replace")
        if sum(said.count(words) for words in HELD_WORDS) >= workers:
            return
        time.sleep(0.2)
    log(f"the light lane's workers are still reading what nearest answers from after {seconds:.0f} s; the first "
        f"clicks may wait for it (see {light_log})")


def start(args: argparse.Namespace) -> dict:
    if not os.environ.get("DATABASE_URL"):
        fail("DATABASE_URL is not set (make demo sets it to the private cluster's database)")
    if nginx_binary() is None:
        fail("nginx is missing: run `scripts/system-deps.sh demo` (it installs Debian's nginx)")
    stop(quiet=True)
    base = front_dir()
    base.mkdir(parents=True, exist_ok=True)
    tmp = _temp_dir(base)
    tmp.mkdir(parents=True, exist_ok=True)
    state = {"dir": str(base), "tmp": str(tmp), "port": args.port, "light_port": _free_port(),
             "heavy_port": _free_port(), "heavy_limit": args.heavy_limit, "timeout": args.timeout}
    (base / "front.json").write_text(json.dumps(state, indent=2))
    light_log = base / "light.log"
    said_before = light_log.stat().st_size if light_log.exists() else 0
    try:
        _light_lane(state, args.light_workers, args.light_threads, state["light_port"])
        _heavy_lane(state, args.heavy_workers, state["heavy_port"])
        _wait(state["light_port"], "the light lane", "light")
        _wait(state["heavy_port"], "the heavy lane", "heavy")
        _nginx(state)
        _wait(args.port, "nginx")
    except SystemExit:  # nothing is left running half-started (granian would start failing workers again)
        stop(quiet=True)
        raise
    _wait_held(light_log, said_before, args.light_workers)
    log(f"serving on http://127.0.0.1:{args.port} (light lane {args.light_workers}x{args.light_threads}, "
        f"heavy lane {args.heavy_workers} workers, at most {args.heavy_limit} heavy requests at once)")
    return state


def _stop_pid(pid: int | None, names: tuple[str, ...], sig: int) -> int | None:
    if not _alive(pid, *names):
        return None
    assert pid is not None
    os.kill(pid, sig)
    return pid


def stop(quiet: bool = False) -> None:
    """Stop nginx (graceful) and both lanes (graceful, then killed after 20 s)."""
    base = front_dir()
    signals = {"nginx": signal.SIGQUIT, "light": signal.SIGTERM, "heavy": signal.SIGTERM}
    pids = {name: p for name, sig in signals.items()
            if (p := _stop_pid(_read_pid(base / f"{name}.pid"), PROGRAMS[name], sig))}
    deadline = time.monotonic() + 20
    while pids and time.monotonic() < deadline:
        pids = {name: p for name, p in pids.items() if _alive(p, *PROGRAMS[name])}
        time.sleep(0.1)
    for name, pid in pids.items():
        # The light lane's workers have their own process group (its session); the heavy lane's die with
        # their master.
        if name == "light":
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    if not quiet:
        log("stopped" if (base / "front.json").exists() else "no front was running")


def status() -> int:
    base = front_dir()
    running = {name: _alive(_read_pid(base / f"{name}.pid"), *programs) for name, programs in PROGRAMS.items()}
    print(" ".join(f"{k}={'running' if v else 'stopped'}" for k, v in running.items()))
    return 0 if all(running.values()) else 3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["start", "stop", "status"])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    ap.add_argument("--light-workers", type=int, default=4)
    ap.add_argument("--light-threads", type=int, default=4)
    ap.add_argument("--heavy-workers", type=int, default=2)
    ap.add_argument("--heavy-limit", type=int, default=4, help="heavy requests in the lane at once (then 503)")
    ap.add_argument("--timeout", type=int, default=120, help="the heavy lane's worker timeout (s)")
    args = ap.parse_args(argv)
    if args.command == "start":
        if not 1 <= args.port <= 65535:
            fail(f"--port was {args.port} but must be 1..65535")
        start(args)
    elif args.command == "stop":
        stop()
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
