"""The limits every request is held to: running out of memory is a 503, a full disk a 507, each as JSON with
Retry-After, never a 500 or a dead worker."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from web import create_app


@pytest.fixture()
def probe_app(database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})

    @app.get("/memory-probe")
    def memory_probe():  # asks for more memory than any machine has: a real allocation failure
        return str(len(bytearray(2**62)))

    return app


def test_a_request_that_runs_out_of_memory_gets_503_json(probe_app):
    res = probe_app.test_client().get("/memory-probe")
    assert res.status_code == 503 and res.is_json
    assert res.headers["Retry-After"] and "memory" in res.get_json()["error"]["message"]


@pytest.fixture()
def full_tmp():
    """A 1 MiB temporary folder (tmpfs, root only), filled, as the app's temporary folder."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path = Path(tempfile.mkdtemp(prefix="minsheng-full-"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True).returncode:
        path.rmdir()
        pytest.skip("tmpfs cannot be mounted here")
    subprocess.run(["dd", "if=/dev/zero", f"of={path / 'filler'}", "bs=64k", "count=64"], capture_output=True)
    before, tempfile.tempdir = tempfile.tempdir, str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = before
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)
        path.rmdir()


# openpyxl's writer, refused mid-file, raises once more while it is collected: not the app's to answer.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("fmt", ["gpkg", "shp", "xlsx"])
def test_an_export_on_a_full_disk_gets_507_json(client, full_tmp, fmt):
    res = client.get(f"/export/parking.{fmt}")
    assert res.status_code == 507 and res.is_json, res.get_data()[:300]
    assert res.headers["Retry-After"] and "space" in res.get_json()["error"]["message"]
    assert client.get("/healthz").status_code == 200
