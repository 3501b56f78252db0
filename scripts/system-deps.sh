#!/usr/bin/env bash
# Make sure the Debian packages the project needs are present.
#   scripts/system-deps.sh demo   PostgreSQL + PostGIS + pgRouting (via pgcluster.py), Node.js/npm, nginx (the
#                                 serving front before the app's lanes)
#   scripts/system-deps.sh test   the above plus GDAL (ogrinfo), Chromium for the browser tests and QGIS
#                                 (qgis, python3-qgis: the OGC API client test drives QGIS headless with
#                                 the system python3, about 4 minutes to install the first time)
#   scripts/system-deps.sh bench  the above plus ogr2ogr (the ETL's reference) and wrk (the HTTP load generator)
# Installs what is missing with apt-get when allowed (root, or password-less sudo);
# otherwise prints the exact command and fails.
set -euo pipefail
mode=${1:-demo}
need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# pgRouting beside every local PostGIS (pgcluster.py does the same for the private cluster; this covers a
# DATABASE_URL that points at this machine's own server).
for control in /usr/share/postgresql/*/extension/postgis.control; do
  [ -e "$control" ] || continue
  ver=$(basename "$(dirname "$(dirname "$control")")")
  [ -x "/usr/lib/postgresql/$ver/bin/postgres" ] || continue
  [ -e "/usr/share/postgresql/$ver/extension/pgrouting.control" ] || need+=("postgresql-$ver-pgrouting")
done
# The planner's PDF/PNG report: headless Chromium and a CJK font; its tests read the PDF with poppler.
command -v chromium >/dev/null 2>&1 || need+=(chromium); fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk); [ "$mode" = demo ] || command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  [ -e /usr/lib/python3/dist-packages/qgis/core/__init__.py ] || need+=(qgis python3-qgis)
fi
if [ "$mode" = bench ]; then
  command -v ogr2ogr >/dev/null 2>&1 || need+=(gdal-bin)
  # Throughput is driven by wrk (C, event loop): a load generator in Python took a core of the two.
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "Missing system packages. Please run (as root):" >&2
  echo "    apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "[system-deps] installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >/dev/null
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
