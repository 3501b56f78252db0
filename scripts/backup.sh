#!/usr/bin/env bash
# Back up or restore the Minsheng Map database with pg_dump / pg_restore.
#
#   scripts/backup.sh backup  URL [DIR]    # pg_dump -Fc into DIR/minsheng-<timestamp>.dump (DIR: var/backups)
#   scripts/backup.sh restore URL FILE     # pg_restore --clean --if-exists into URL
#
# URL is a libpq URL (postgresql://user@host:port/db); a SQLAlchemy "+driver" is dropped.
# The newest pg_dump among PATH and /usr/lib/postgresql/*/bin is used, so it is
# never older than the server.
set -euo pipefail

die() { echo "backup: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: $0 backup URL [DIR] | restore URL FILE"
cmd=$1
url=$(printf '%s' "$2" | sed -E 's#^postgresql\+[a-z0-9]+://#postgresql://#')

tool() {  # newest binary called $1
  local best="" bestv=0 v p
  for p in $(command -v "$1" 2>/dev/null) /usr/lib/postgresql/*/bin/"$1"; do
    [ -x "$p" ] || continue
    v=$("$p" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    if [ "$v" -gt "$bestv" ]; then best=$p; bestv=$v; fi
  done
  [ -n "$best" ] || die "$1 not found: install postgresql-client"
  echo "$best"
}

case "$cmd" in
  backup)
    dir=${3:-var/backups}
    mkdir -p "$dir"
    file="$dir/minsheng-$(date -u +%Y%m%dT%H%M%SZ).dump"
    "$(tool pg_dump)" --format=custom --no-owner --no-privileges --file="$file.part" --dbname="$url"
    mv "$file.part" "$file"
    echo "$file"
    ;;
  restore)
    [ $# -ge 3 ] && [ -n "$3" ] || die "restore needs a FILE: make restore FILE=var/backups/minsheng-....dump"
    [ -f "$3" ] || die "no such backup file: $3"
    "$(tool pg_restore)" --clean --if-exists --no-owner --no-privileges --single-transaction \
      --exit-on-error --dbname="$url" "$3"
    echo "restored $3"
    ;;
  *) die "unknown command $cmd (backup or restore)";;
esac
