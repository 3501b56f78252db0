"""Chaos: the real front (nginx and both lanes, started by ``scripts/serve.py``) on a throw-away
cluster serves bounded loopback traffic and a stream of edits while, one after another, a backup is restored
(``make restore``), a light and the heavy worker are killed, the workers' temporary folder fills up, and
PostgreSQL stops and starts again.

Asserted: no 5xx outside the outage window (the only refusals outside it are the ones the service means:
the heavy lane's 503 JSON with Retry-After, and a full disk's 507 JSON for a file export); every edit the
API acknowledged is there at the end, whole (the row and its one change-log entry); the restore brought back
exactly the backup's facilities.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from db import libpq_url, live_url, make_engine
from services import ops
from services.editing import create_token
from tests.front import running_front
from tests.throwaway_cluster import AVAILABLE, cluster_command, throwaway_cluster
from tests.traffic import Answer, Traffic

ROOT = Path(__file__).resolve().parents[1]
LIGHT = ["/healthz", "/api/nearest?" + urllib.parse.urlencode({"lon": 117.5566, "lat": 34.864, "layer": "all"}),
         "/api/search?q=%E5%85%AC%E5%9B%AD&limit=5", "/api/layers", "/"]
HEAVY = ["/api/coverage?layer=parking&district=370402", "/export/parking.csv"]
#: Seconds after PostgreSQL answers again during which a request may still meet the outage.
RECOVERY_GRACE_S = 2.0

pytestmark = [pytest.mark.db, pytest.mark.skipif(not AVAILABLE, reason="PostgreSQL server binaries are needed "
                                                                       "for a throw-away cluster")]


@pytest.fixture(scope="module")
def archive(database_url, tmp_path_factory):
    """A backup of the test database (the demo city), made by the project's backup."""
    return ops.backup(database_url, tmp_path_factory.mktemp("chaos-backups"))


@pytest.fixture(scope="module")
def small_tmp() -> Iterator[Path | None]:
    """A 16 MiB temporary folder of its own (tmpfs; root only), or None where it cannot be mounted."""
    path = Path(tempfile.mkdtemp(prefix="minsheng-chaos-tmp-"))
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=1777", "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)
        path.rmdir()


class Writer:
    """A thread that creates facilities through the admin API (source ids ``chaos-<n>``), pausable."""

    def __init__(self, base: str, secret: str) -> None:
        self.results: list[tuple[float, float, int, int]] = []  # (start, end, n, status)
        self.running = threading.Event()
        self.running.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base, secret), daemon=True)
        self._thread.start()

    def _run(self, base: str, secret: str) -> None:
        session = requests.Session()
        n = 0
        while not self._stop.is_set() and n < 2000:
            if not self.running.wait(0.2):
                continue
            n += 1
            body = {"layer": "police_station", "name": f"混沌{n}", "source_id": f"chaos-{n}",
                    "lon": 117.55 + (n % 50) * 0.001, "lat": 34.86}
            start = time.monotonic()
            try:
                status = session.post(base + "/api/admin/facilities", json=body, timeout=60,
                                      headers={"Authorization": f"Bearer {secret}"}).status_code
            except requests.RequestException:
                status = 599
            self.results.append((start, time.monotonic(), n, status))
            time.sleep(0.1)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self.running.clear()
        time.sleep(1.0)  # a write in flight finishes
        try:
            yield
        finally:
            self.running.set()

    def finish(self) -> list[tuple[float, float, int, int]]:
        self._stop.set()
        self._thread.join(timeout=120)
        return self.results


def facilities_digest(url: str) -> tuple[int, str]:
    """Count and hash of the facility rows the serving database holds (geometries as WKB)."""
    engine = make_engine(live_url(url))
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(
                "SELECT count(*), md5(string_agg(to_jsonb(f)::text, '|' ORDER BY f.id)) FROM facility f")).one())
    finally:
        engine.dispose()


def wait_healthy(base: str, seconds: float = 120.0) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"the front did not answer /healthz within {seconds} s")


def past_busy(url: str, seconds: float = 60.0) -> requests.Response:
    """GET ``url``, again after each deliberate 503 of a busy heavy lane (as a client should), for ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        res = requests.get(url, timeout=120)
        if res.status_code != 503 or "Retry-After" not in res.headers or time.monotonic() > deadline:
            return res
        time.sleep(0.5)


def during(answer: Answer, window: tuple[float, float]) -> bool:
    return answer.end >= window[0] and answer.start <= window[1]


def allowed(answer: Answer, windows: dict[str, tuple[float, float]]) -> bool:
    """Whether a failure is one the service means, or the disturbance itself.

    In the outage any request may get 503, and a download streaming when the
    server stopped is cut short (599 here); a download whose worker was killed
    is cut short too (its headers had left). A heavy request may always meet
    the full lane's 503.
    """
    if during(answer, windows["outage"]) and answer.status in (503, 599):
        return True
    if during(answer, windows["kill"]) and answer.path in HEAVY and answer.status == 599:
        return True
    return answer.path in HEAVY and answer.deliberate_busy


@dataclass
class ChaosRun:
    """When each disturbance ran (monotonic start, end), every answer, every write, the exports on a full disk."""

    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    writes: list[tuple[float, float, int, int]] = field(default_factory=list)
    exports_when_full: list[tuple[int, str]] = field(default_factory=list)


def test_chaos(archive, small_tmp):
    with throwaway_cluster("minsheng_chaos") as (url, env):
        ops.restore(url, archive, drain_s=0, echo=lambda *_: None)  # the demo city, served from a generation
        engine = make_engine(live_url(url))
        _, secret = create_token(engine, "editor", "chaos")
        engine.dispose()
        extra = {"TMPDIR": str(small_tmp)} if small_tmp else {}
        with running_front(url, "--light-workers", "2", "--light-threads", "4", "--heavy-workers", "1",
                           "--heavy-limit", "2", extra_env=extra) as front:
            run = run_chaos(front, env, url, archive, small_tmp, secret)
        check_answers(run.answers, run.windows)
        check_writes(url, run.writes)
    assert run.exports_when_full or small_tmp is None
    for status, body in run.exports_when_full:  # refused as JSON (a clean 507), or made after all
        assert status in (200, 507), (status, body[:300])
        if status != 200:
            assert body.startswith('{"error"'), body[:300]


def run_chaos(front, env, url, archive, small_tmp, secret) -> ChaosRun:
    run = ChaosRun()
    windows = run.windows
    traffic = Traffic(front.base, LIGHT + HEAVY, threads=4)
    writer = Writer(front.base, secret)
    try:
        time.sleep(3.0)
        with writer.paused():  # restore: the data goes back to the backup's, nothing half-written
            backup = ops.backup(url, archive.parent)
            before = facilities_digest(url)
            start = time.monotonic()
            done = subprocess.run(["make", "--no-print-directory", "-s", "restore", f"FILE={backup}"], cwd=ROOT,
                                  env=dict(os.environ, DATABASE_URL=libpq_url(url)), capture_output=True, text=True,
                                  timeout=900)
            windows["restore"] = (start, time.monotonic())
            assert done.returncode == 0, done.stderr
            assert facilities_digest(url) == before
        with writer.paused():  # a worker of each lane killed: GETs are retried on a live worker
            start = time.monotonic()
            for lane in ("light", "heavy"):
                os.kill(front.worker_pids(lane)[0], signal.SIGKILL)
            time.sleep(5.0)
            windows["kill"] = (start, time.monotonic())
        if small_tmp:  # the workers' temporary folder fills up: exports that need a file refuse cleanly
            start = time.monotonic()
            filler = small_tmp / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=64"], capture_output=True)
            for _ in range(3):
                res = past_busy(front.base + "/export/parking.gpkg")
                run.exports_when_full.append((res.status_code, res.text if res.status_code != 200 else ""))
                time.sleep(1.0)  # light traffic goes on meanwhile
            filler.unlink()
            windows["disk_full"] = (start, time.monotonic())
        start = time.monotonic()
        cluster_command("stop", env)
        time.sleep(3.0)
        cluster_command("ensure", env, "--db", "minsheng_chaos")
        windows["outage"] = (start, wait_healthy(front.base) + RECOVERY_GRACE_S)
        time.sleep(4.0)
    finally:
        run.answers = traffic.finish()
        run.writes = writer.finish()
    return run


def check_answers(answers: list[Answer], windows: dict[str, tuple[float, float]]) -> None:
    assert len(answers) > 200, "traffic ran"
    outside = [(a.path, a.status, a.body[:200], {name: (round(a.start - w[0], 2), round(a.end - w[1], 2))
                                                   for name, w in windows.items()})
               for a in answers if a.status >= 500 and not allowed(a, windows)]
    assert outside == [], "failures outside the disturbances (seconds from each window's start and end)"
    for name, (start, end) in windows.items():
        if name != "outage":
            served = [a for a in answers if a.start >= start and a.end <= end and a.status == 200]
            assert served, f"nothing was served during {name}"


def check_writes(url: str, writes: list[tuple[float, float, int, int]]) -> None:
    acknowledged = {n for _, _, n, status in writes if status == 201}
    assert len(acknowledged) > 10, "edits ran"
    engine = make_engine(live_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT f.source_id, f.name, f.version, count(c.id) AS logged,"
                " bool_and(c.action = 'insert' AND c.after->>'name' = f.name) AS whole"
                " FROM facility f LEFT JOIN change_log c ON c.facility_id = f.id"
                " WHERE f.source_id LIKE 'chaos-%' GROUP BY f.id, f.source_id, f.name, f.version")).all()
    finally:
        engine.dispose()
    stored = {int(r.source_id.split("-")[1]): r for r in rows}
    assert acknowledged <= set(stored), f"lost: {sorted(acknowledged - set(stored))}"
    half = [r.source_id for r in rows if r.logged != 1 or not r.whole or r.version != 1 or
            r.name != f"混沌{r.source_id.split('-')[1]}"]
    assert half == []
