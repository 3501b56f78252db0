"""Front-end packages installed from the npm registry at set-up, served by the app.

Nothing is loaded from outside: ``/vendor/<package>/<path>`` serves files of
the allowed packages from ``node_modules``.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, send_from_directory

NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
PACKAGES = {"leaflet", "leaflet.markercluster", "swagger-ui-dist", "maplibre-gl"}

bp = Blueprint("assets", __name__)


@bp.get("/vendor/<package>/<path:filename>")
def vendor(package: str, filename: str):
    if package not in PACKAGES:
        abort(404)
    root = NODE_MODULES / package
    if not root.is_dir():
        abort(404, description=f"front-end package {package} is not installed: run `make demo` (npm ci)")
    response = send_from_directory(root, filename, max_age=86400)
    return response
