"""Bounded loopback traffic for the reliability tests: threads that GET a list of paths in turn until stopped."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

#: Most answers one run records (the loops stop there even if nobody stops them).
MAX_ANSWERS = 50_000


@dataclass(frozen=True)
class Answer:
    """One request: when it started and ended (monotonic seconds), what it asked, what came back."""

    start: float
    end: float
    path: str
    status: int
    body: str
    retry_after: str | None

    @property
    def deliberate_busy(self) -> bool:
        """A 503 the service means (a full heavy lane, a worker restarting): JSON with Retry-After."""
        return self.status == 503 and self.retry_after is not None and self.body.startswith('{"error"')


class Traffic:
    """``threads`` threads that GET ``paths`` in turn against ``base`` until :meth:`finish`."""

    def __init__(self, base: str, paths: list[str], threads: int = 4, timeout: float = 60.0) -> None:
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(base, paths, i, timeout), daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, base: str, paths: list[str], offset: int, timeout: float) -> None:
        session = requests.Session()
        i = offset
        while not self._stop.is_set() and len(self.answers) < MAX_ANSWERS:
            path = paths[i % len(paths)]
            i += 1
            start = time.monotonic()
            try:
                res = session.get(base + path, timeout=timeout, headers={"Accept": "text/html"})
                answer = Answer(start, time.monotonic(), path, res.status_code, res.text,
                                res.headers.get("Retry-After"))
            except requests.RequestException as exc:
                answer = Answer(start, time.monotonic(), path, 599, str(exc), None)
            self.answers.append(answer)

    def finish(self) -> list[Answer]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        return self.answers
