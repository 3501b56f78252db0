"""QGIS's OAPIF provider against the service, headless. Run by Debian's ``/usr/bin/python3`` (which has
``python3-qgis``; the project's venv cannot import it), with ``QT_QPA_PLATFORM=offscreen``:

    /usr/bin/python3 tests/qgis_oapif.py BASE_URL TOKEN FID NAME DRAWN COLLECTION...

Prints one JSON object: for each collection, whether the layer is valid, its
feature count and field types, and for those in DRAWN (comma-separated) the
features a zoomed-out view (eastern China) fetches; the features left by a date subset string; and the id of the
feature edited. QGIS 3.22's OAPIF provider reads but does not write (Part 4
arrived in later QGIS), so the edit is made the way a QGIS script would:
the feature read through the provider, changed as a QgsFeature, written as
GeoJSON by QGIS's own QgsJsonExporter and sent with QGIS's network stack
(QgsBlockingNetworkRequest) to the Part 4 endpoint with the bearer token.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 - the platform must be set before Qt loads
    QgsApplication,
    QgsBlockingNetworkRequest,
    QgsFeatureRequest,
    QgsJsonExporter,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QByteArray, QUrl  # noqa: E402
from qgis.PyQt.QtNetwork import QNetworkRequest  # noqa: E402


def layer(base: str, key: str) -> QgsVectorLayer:
    return QgsVectorLayer(f"url='{base}/ogc' typename='{key}' pagingEnabled='true'", key, "OAPIF")


def describe(base: str, key: str, draw: bool) -> dict:
    """The layer as QGIS opens it; with ``draw``, the features a zoomed-out view (eastern China) fetches."""
    lyr = layer(base, key)
    fields = {f.name(): f.typeName() for f in lyr.fields()}
    out = {"valid": lyr.isValid(), "count": lyr.featureCount(), "fields": fields}
    if draw:
        zoomed_out = QgsFeatureRequest().setFilterRect(QgsRectangle(100, 20, 130, 45))
        out["zoomed_out"] = sum(1 for _ in lyr.getFeatures(zoomed_out))
    return out


def subset(base: str) -> int:
    lyr = layer(base, "parking")
    lyr.setSubsetString("\"opened_on\" >= '2022-01-01' AND \"opened_on\" <= '2022-06-30'")
    return sum(1 for _ in lyr.getFeatures())


def edit(base: str, token: str, fid: str, name: str) -> dict:
    """Give the police station named ``name`` (feature ``fid`` on the server) a new phone number."""
    lyr = layer(base, "police_station")
    feature = next(f for f in lyr.getFeatures() if f["name"] == name)
    url = f"{base}/ogc/collections/police_station/items/{fid}"
    probe = QgsBlockingNetworkRequest()
    probe.get(QNetworkRequest(QUrl(url)), forceRefresh=True)
    etag = bytes(probe.reply().rawHeader(QByteArray(b"ETag"))).decode()
    feature.setAttribute("phone", "0632-QGIS")
    exporter = QgsJsonExporter(lyr)
    exporter.setIncludeAttributes(True)
    body = json.loads(exporter.exportFeature(feature))  # the whole feature: PUT replaces it
    request = QNetworkRequest(QUrl(url))
    request.setRawHeader(b"Authorization", f"Bearer {token}".encode())
    request.setRawHeader(b"If-Match", etag.encode())
    request.setRawHeader(b"Content-Type", b"application/geo+json")
    sender = QgsBlockingNetworkRequest()
    sender.put(request, QByteArray(json.dumps(body).encode()))
    status = sender.reply().attribute(QNetworkRequest.HttpStatusCodeAttribute)
    return {"id": fid, "etag": etag, "status": status,
            "answer": bytes(sender.reply().content()).decode(errors="replace")[:500]}


def main() -> None:
    base, token, fid, name, drawn, *keys = sys.argv[1:]
    app = QgsApplication([], False)
    app.initQgis()
    try:
        out = {"collections": {key: describe(base, key, key in drawn.split(",")) for key in keys},
               "subset": subset(base),
               "edit": edit(base, token, fid, name)}
    finally:
        app.exitQgis()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
