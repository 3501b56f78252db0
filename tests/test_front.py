"""The serving front: slow clients hold no worker, heavy requests have their own bounded lane, nginx's own
errors are JSON. The front is the one ``make demo`` starts (``scripts/serve.py``), on the test database."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import statistics
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from db import libpq_url
from tests.front import Front, free_port, running_front, serve

NEAREST = "/api/nearest?" + urllib.parse.urlencode({"lon": 117.5566, "lat": 34.8640, "layer": "all", "k": 1})
HEAVY = "/export/population.geojson"


@pytest.fixture(scope="module")
def front(database_url):
    with running_front(database_url, "--light-workers", "2", "--light-threads", "2", "--heavy-workers", "1",
                       "--heavy-limit", "2") as running:
        yield running


def get(front: Front, path: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes, float]:
    """One GET on a new connection: status, headers, body and seconds taken."""
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=timeout)
    start = time.perf_counter()
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read(), time.perf_counter() - start
    finally:
        conn.close()


class SlowClients:
    """``headers`` connections that send their request headers a byte at a time and ``bodies`` that announce
    a 100 kB JSON body and trickle it, all at once, from one thread."""

    def __init__(self, port: int, headers: int, bodies: int) -> None:
        self.socks: list[tuple[socket.socket, bytes]] = []
        for _ in range(headers):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            self.socks.append((s, b"X"))
        for _ in range(bodies):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /api/admin/facilities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Authorization: Bearer msm_slow\r\nContent-Length: 100000\r\n\r\n{")
            self.socks.append((s, b" "))
        self.stop = threading.Event()
        self.dropped = 0
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(0.5):
            self.dropped = sum(not self._send(s, b) for s, b in self.socks)

    @staticmethod
    def _send(sock: socket.socket, byte: bytes) -> bool:
        try:
            sock.sendall(byte)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for s, _ in self.socks:
            s.close()


def test_slow_clients_hold_no_worker(front):
    """200 connections that send headers slowly and 16 that trickle a POST body: /healthz and /api/nearest
    still answer at once (without the front, each slow connection holds a worker's thread)."""
    quiet = [get(front, NEAREST)[3] for _ in range(3)]
    slow = SlowClients(front.port, headers=200, bodies=16)
    try:
        time.sleep(1.0)  # every slow connection has been accepted and is mid-request
        probes = [get(front, path, timeout=10) for _ in range(5) for path in ("/healthz", NEAREST)]
        still_open = len(slow.socks) - slow.dropped
    finally:
        slow.close()
    assert [p[0] for p in probes] == [200] * len(probes)
    assert still_open >= 200, f"only {still_open} slow connections were still open during the probes"
    worst = max(p[3] for p in probes)
    assert statistics.median(p[3] for p in probes) < 1.0 and worst < 5.0, (worst, quiet)


def test_a_ten_thousand_character_query_gets_json_414(front):
    status, headers, body, _ = get(front, "/api/search?q=" + "a" * 10_000)
    assert status == 414
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["status"] == 414
    assert "8,000" in json.loads(body)["error"]["message"]


def test_a_long_query_within_the_front_limit_gets_json_414_from_the_app(front):
    status, headers, body, _ = get(front, "/api/search?q=" + "a" * 8_100)
    assert status == 414 and headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"]["parameter"] == "query"


def lanes_in_log(front: Front, requests_: list[str]) -> dict[str, str]:
    """The lane the access log names for each of ``requests_`` ("GET /path"); nginx writes it within a second."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(found) < len(requests_):
        for line in front.access_log().splitlines():
            m = re.search(r'"(\w+ \S+) HTTP/1\.[01]" \d+ \d+ lane=(\w+)', line)
            if m and m.group(1) in requests_:
                found[m.group(1)] = m.group(2)
        time.sleep(0.3)
    return found


def test_each_request_goes_to_its_lane(front):
    light = [NEAREST, "/api/search?q=%E5%85%AC%E5%9B%AD&limit=5", "/healthz", "/?lang=en",
             "/ogc/collections/parking/items?limit=50", "/ogc/collections/parking/items"]
    heavy = ["/api/coverage?layer=parking&district=370402", "/planner?layer=parking",
             "/export/parking.csv", "/ogc/collections/parking/items?limit=5000"]
    for path in light + heavy:
        assert get(front, path)[0] in (200, 503), path
    requests.post(front.base + "/export/parking.csv", timeout=30)  # not a GET: the light lane answers 405
    expected = {**{f"GET {p}": "light" for p in light}, **{f"GET {p}": "heavy" for p in heavy},
                "POST /export/parking.csv": "light"}
    assert lanes_in_log(front, list(expected)) == expected


def test_a_full_heavy_lane_says_503_with_retry_after_while_light_requests_answer(front):
    barrier = threading.Barrier(8)
    results: list[tuple[int, dict[str, str], bytes, float]] = []

    def heavy() -> None:
        barrier.wait()
        results.append(get(front, HEAVY, timeout=120))

    threads = [threading.Thread(target=heavy) for _ in range(8)]
    for t in threads:
        t.start()
    light = [get(front, NEAREST) for _ in range(5)]
    for t in threads:
        t.join(timeout=180)
    statuses = sorted(r[0] for r in results)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2, statuses
    busy = [r for r in results if r[0] == 503]
    assert busy, "eight heavy requests at once on a lane of two should refuse some"
    for _, headers, body, _ in busy:
        assert headers["retry-after"] == "5" and headers["content-type"].startswith("application/json")
        assert "heavy" in json.loads(body)["error"]["message"]
    assert [r[0] for r in light] == [200] * 5


def test_every_worker_has_a_memory_ceiling_of_its_budget(front):
    """Each worker may grow by its budget (1 GiB) and what its threads reserve, no more (RLIMIT_AS)."""
    budget = 1024 * 2**20
    for lane, threads in (("light", 2), ("heavy", 1)):
        for pid in front.worker_pids(lane):
            limits = Path(f"/proc/{pid}/limits").read_text()
            ceiling = int(re.search(r"Max address space\s+(\d+)", limits).group(1))
            status = Path(f"/proc/{pid}/status").read_text()
            size = int(re.search(r"VmSize:\s+(\d+) kB", status).group(1)) * 1024
            reserved = (64 + 8 * threads) * 2**20
            assert size < ceiling <= size + budget + reserved, (lane, pid, ceiling, size)
            assert ceiling - size > budget // 2, "a worker is left at least half its budget at rest"


def test_the_heavy_lane_holds_the_planning_inputs_as_it_starts(front, engine):
    """Each heavy worker reads the demand grid and joins its cells to both road networks in the background
    as it starts, so no planner view pays for it; the lane's log says what it holds."""
    with engine.connect() as conn:
        cells = conn.execute(text("SELECT count(*) FROM demand_cell")).scalar()
    held = _said(front.dir / "heavy.log", "planning inputs")
    assert held, "the heavy lane's log never said whether it holds the planning inputs"
    assert "planning inputs held in" in held[0], held
    assert f"demand grid of {cells:,} cells" in held[0], held
    assert "walk network" in held[0] and "drive network" in held[0], held


def test_the_front_says_it_serves_only_once_every_light_worker_holds_what_nearest_needs(front):
    """When `serve.py start` returns (`make demo` says "serving on …"), both light workers have already said
    they hold the facilities and the road networks, so the first clicks wait for no read."""
    said = [line for line in front.light_log_at_start.splitlines() if "nearest facilities held in" in line]
    assert len(said) == 2, front.light_log_at_start[-2000:]
    assert all("the walk and drive networks" in line for line in said), said


def test_the_light_lane_holds_the_facilities_for_nearest_as_it_starts(front, engine):
    """Each light worker reads every active facility for nearest, and both road networks with the
    facilities joined to them, in the background as it starts; its log says what it holds."""
    with engine.connect() as conn:
        active = conn.execute(text("SELECT count(*) FROM facility WHERE status = 'active'")).scalar()
    held = _said(front.dir / "light.log", "nearest facilities")
    assert held, "the light lane's log never said whether it holds the facilities for nearest"
    assert "nearest facilities held in" in held[0], held
    assert f"{active:,} active facilities" in held[0], held
    assert "the walk and drive networks" in held[0], held  # the first click along the roads reads no graph


def _said(log: Path, words: str) -> list[str]:
    """The lines of a lane's log that mention ``words``, once there are any (empty if none come)."""
    deadline = time.monotonic() + 300  # a bound on waiting under load, not a speed check
    while time.monotonic() < deadline:
        lines = [line for line in (log.read_text(errors="replace") if log.exists() else "").splitlines()
                 if words in line]
        if lines:
            return lines
        time.sleep(0.5)
    return []


def test_a_light_worker_that_dies_is_replaced_and_the_lane_keeps_answering(front):
    """A light worker killed outright: the click still answers meanwhile, and within 30 s the lane has its
    two workers again, the new one with its memory ceiling and the facilities held, as at start."""
    before = front.worker_pids("light")
    assert len(before) == 2, before
    held_before = len(_said(front.dir / "light.log", "nearest facilities held in"))
    os.kill(before[0], signal.SIGKILL)
    answers = [get(front, NEAREST)[0] for _ in range(5)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = front.worker_pids("light")
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.5)
    assert answers == [200] * 5
    assert len(now) == 2 and before[0] not in now and before[1] in now, (before, now)
    new = next(pid for pid in now if pid not in before)
    while time.monotonic() < deadline and len(_said(front.dir / "light.log", "nearest facilities held in")) == \
            held_before:
        time.sleep(0.5)
    assert len(_said(front.dir / "light.log", "nearest facilities held in")) == held_before + 1
    # The ceiling is set as the app is loaded, before holding starts.
    assert re.search(r"Max address space\s+\d+", Path(f"/proc/{new}/limits").read_text()), "no ceiling"
    assert get(front, NEAREST)[0] == 200


def test_a_front_whose_workers_cannot_start_says_why_and_leaves_nothing_running(database_url, tmp_path):
    """A setting the workers cannot use (a memory budget that is not a number): `serve.py start` fails with
    the workers' own error in its message, and no nginx, granian or gunicorn is left running."""
    os.chmod(tmp_path, 0o755)
    env = dict(os.environ, DATABASE_URL=libpq_url(database_url), MINSHENG_FRONT_DIR=str(tmp_path),
               MINSHENG_WORKER_MEMORY_MB="lots")
    started = serve("start", env, "--port", str(free_port()), "--light-workers", "1", "--light-threads", "1",
                    "--heavy-workers", "1")
    assert started.returncode != 0
    assert "did not start" in started.stderr or "stopped before it answered" in started.stderr, started.stderr
    assert "invalid literal for int() with base 10: 'lots'" in started.stderr, started.stderr[-3000:]
    status = serve("status", env)
    assert status.stdout.strip() == "nginx=stopped light=stopped heavy=stopped", status.stdout
    left = [pid for pid in Path("/proc").glob("[0-9]*")
            if str(tmp_path).encode() in _read_or_empty(pid / "cmdline") or
            str(tmp_path).encode() in _read_or_empty(pid / "environ")]
    assert not left, [(_read_or_empty(p / "cmdline")[:200]) for p in left]


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
