"""Shared helpers for the benchmarks: timing, databases, subprocess memory, the app's servers and the serving front."""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from db import migrate, sa_url

ROOT = Path(__file__).resolve().parents[1]

PY = sys.executable


def bench_url(name: str = "minsheng_bench") -> str:
    """A benchmark database next to the test database (never the demo's)."""
    base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not base:
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "pgcluster.py"), "ensure", "--db", name],
                             capture_output=True, text=True, check=True)
        migrate(out.stdout.strip())
        return out.stdout.strip()
    url = base.rsplit("/", 1)[0] + "/" + name
    admin = create_engine(sa_url(base.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    migrate(url)
    return url


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median_of(func: Callable[[], object], runs: int, warmup: bool = True) -> tuple[float, list[float]]:
    if warmup:
        func()
    times = [timed(func) for _ in range(runs)]
    return statistics.median(times), times


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS of the process tree in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{' '.join(argv[:4])}… failed ({status}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0


def write_json(result: dict, path: str | None) -> None:
    text_out = json.dumps(result, indent=2, ensure_ascii=False)
    print(text_out)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text_out, encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serving_script():
    """``scripts/serve.py`` as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("minsheng_serve", ROOT / "scripts" / "serve.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answering(proc: subprocess.Popen, port: int, what: str) -> tuple[subprocess.Popen, int]:
    """``proc`` and ``port`` once /healthz answers there (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
    stop_server(proc)
    raise RuntimeError(f"{what} did not answer /healthz within 60 s")


def start_light_lane(url: str, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    """The app as the front's light lane serves it (granian, the same command as ``scripts/serve.py``,
    keep-alive) but bare, on a free loopback port, once /healthz answers.

    Returns the process (its own session, for :func:`stop_server`) and the port.
    """
    port = _free_port()
    serving = _serving_script()
    env = dict(serving.lane_env("light", threads), DATABASE_URL=url, MINSHENG_HOLD_INPUTS="1")
    proc = subprocess.Popen(serving.light_lane_argv(workers, threads, port), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    return _answering(proc, port, "the light lane (granian)")


def start_gunicorn(url: str, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    """The app under gunicorn (gthread, keep-alive) on a free loopback port, once /healthz answers
    (to compare with a peer served the same way: ``bench_ogc``).

    Each worker listens on a socket of its own (``SO_REUSEPORT``), so the kernel spreads the client's
    keep-alive connections over the workers instead of the quickest worker taking them all.
    """
    port = _free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--bind", f"127.0.0.1:{port}", "--keep-alive", "30", "--graceful-timeout", "5", "--timeout", "120",
         "--reuse-port", "--log-level", "warning", "web:create_app()"],
        cwd=ROOT, env=dict(os.environ, DATABASE_URL=url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    return _answering(proc, port, "gunicorn")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started here, and its workers (its whole session)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def start_front(url: str, *args: str) -> tuple[dict, int]:
    """The serving front (nginx before the light and heavy lanes, ``scripts/serve.py``) on a free loopback
    port, in a temporary directory; ``args`` go to ``serve.py start``. Returns (its environment, port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=url, MINSHENG_FRONT_DIR=tempfile.mkdtemp(prefix="minsheng-bench-front-"))
    res = subprocess.run([PY, str(ROOT / "scripts" / "serve.py"), "start", "--port", str(port), *args], env=env,
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"the front did not start: {res.stderr[-2000:]}")
    return env, port


def stop_front(env: dict) -> None:
    subprocess.run([PY, str(ROOT / "scripts" / "serve.py"), "stop"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(env["MINSHENG_FRONT_DIR"], ignore_errors=True)


def front_worker_peaks_mib(env: dict) -> dict[str, float]:
    """Peak resident memory (VmHWM, MiB) of the largest live worker of each lane of a running front."""
    base = Path(env["MINSHENG_FRONT_DIR"])
    out = {}
    for lane in ("light", "heavy"):
        master = int((base / f"{lane}.pid").read_text())
        peaks = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    status = (stat.parent / "status").read_text()
                    peaks.append(int(status.split("VmHWM:")[1].split()[0]) / 1024)
            except (OSError, IndexError, ValueError):
                continue
        out[lane] = round(max(peaks, default=0.0), 1)
    return out
