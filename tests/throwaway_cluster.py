"""A throw-away PostgreSQL + PostGIS cluster for tests that stop and start the server.

The shared cluster is never stopped (other people use it). This one lives in
a temporary directory, made by the project's own ``scripts/pgcluster.py``
(``PGCLUSTER_DIR`` and ``--state``), and is removed afterwards.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PGCLUSTER = ROOT / "scripts" / "pgcluster.py"
#: Whether this machine has PostgreSQL server binaries to make one.
AVAILABLE = bool(glob.glob("/usr/lib/postgresql/*/bin/postgres"))


def cluster_command(command: str, env: dict[str, str], *extra: str) -> str:
    """Run ``pgcluster.py command`` for the cluster ``env`` names; its output (the URL for ``ensure``)."""
    res = subprocess.run([sys.executable, str(PGCLUSTER), command, *extra], env=env, capture_output=True,
                         text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@contextlib.contextmanager
def throwaway_cluster(database: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A cluster of our own with ``database`` (PostGIS enabled): yields (its URL, the env for pgcluster.py)."""
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-cluster-"))
    os.chmod(tmp, 0o755)  # as root, the server runs as postgres and must reach its data directory
    env = dict(os.environ, PGCLUSTER_DIR=str(tmp / "pgdata"), PGCLUSTER_STATE=str(tmp / "state.json"))
    try:
        yield cluster_command("ensure", env, "--db", database), env
    finally:
        subprocess.run([sys.executable, str(PGCLUSTER), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
