"""The serving front (nginx before the light lane, granian, and the heavy lane, gunicorn) for tests, started
by the project's own ``scripts/serve.py`` in a temporary directory on a free port, against a database the
test chooses."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from db import libpq_url

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "scripts" / "serve.py"


@dataclass(frozen=True)
class Front:
    """A running front: its base URL and port, its directory (config, logs, pid files) and environment, and
    what the light lane's log said when ``serve.py start`` returned."""

    base: str
    port: int
    dir: Path
    env: dict[str, str]
    light_log_at_start: str = ""

    def worker_pids(self, lane: str) -> list[int]:
        """The pids of the workers of ``lane`` (children of its main process)."""
        master = int((self.dir / f"{lane}.pid").read_text())
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:  # the parent pid
                pids.append(int(stat.parent.name))
        return pids

    def access_log(self) -> str:
        path = self.dir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(command: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SERVE), command, *args], env=env, capture_output=True, text=True,
                          timeout=300)


@contextlib.contextmanager
def running_front(database_url: str, *args: str, extra_env: dict[str, str] | None = None) -> Iterator[Front]:
    """Start the front on ``database_url`` (``args`` go to ``serve.py start``); stop it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-front-"))
    os.chmod(tmp, 0o755)  # as root, nginx's workers run as nobody and keep their temporary files here
    port = free_port()
    env = dict(os.environ, DATABASE_URL=libpq_url(database_url), MINSHENG_FRONT_DIR=str(tmp), **(extra_env or {}))
    started = serve("start", env, "--port", str(port), *args)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        light_log = tmp / "light.log"
        yield Front(f"http://127.0.0.1:{port}", port, tmp, env,
                    light_log.read_text(errors="replace") if light_log.exists() else "")
    finally:
        serve("stop", env)
        shutil.rmtree(tmp, ignore_errors=True)
