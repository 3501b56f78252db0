# Minsheng Map. The two commands: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PORT ?= 5000
SYSPY ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app web
# The demo database: DATABASE_URL when set, else the private cluster's.
DEMO_DB = $${DATABASE_URL:-$$($(SYSPY) scripts/pgcluster.py ensure --db minsheng)}
# The test database is never the demo's.
TEST_DB = $${TEST_DATABASE_URL:-$$(if [ -n "$$DATABASE_URL" ]; then echo "$${DATABASE_URL%/*}/minsheng_test"; \
          else $(SYSPY) scripts/pgcluster.py ensure --db minsheng_test; fi)}

.PHONY: help setup demo serve test bench stop backup restore

help:
	@echo "make demo   set up, load the demo city and serve http://127.0.0.1:$(PORT)"
	@echo "make test   set up and run the test suite against a real PostGIS"
	@echo "make bench  run the benchmarks (writes bench/RESULTS.md)"
	@echo "make stop   stop the private PostGIS cluster"
	@echo "make backup / make restore FILE=...   pg_dump / pg_restore the demo database"

$(VENV)/.installed: requirements.txt
	@echo "[setup] Python packages into $(VENV)"
	@test -x $(PY) || $(SYSPY) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "[setup] front-end assets from the npm registry"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup:
	@scripts/system-deps.sh demo
	@$(MAKE) --no-print-directory $(VENV)/.installed node_modules/.installed

demo: setup
	@url="$(DEMO_DB)" && export DATABASE_URL="$$url" && \
	  $(FLASK) db upgrade && $(FLASK) etl demo && \
	  echo "Serving Minsheng Map on http://127.0.0.1:$(PORT)  (Ctrl-C to stop; \`make stop\` stops the database)" && \
	  exec $(VENV)/bin/gunicorn --workers 4 --threads 2 --bind 127.0.0.1:$(PORT) --access-logfile - \
	    --graceful-timeout 5 "web:create_app()"

test: setup
	@scripts/system-deps.sh test
	@url="$(TEST_DB)" && export TEST_DATABASE_URL="$$url" && \
	  $(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	@scripts/system-deps.sh bench
	@url="$(TEST_DB)" && export TEST_DATABASE_URL="$$url" && $(PY) -m bench.run $(BENCH_ARGS)

stop:
	@if [ -f var/pgcluster.json ]; then $(SYSPY) scripts/pgcluster.py stop; else echo "no private cluster"; fi

# Backups: `make backup` writes var/backups/minsheng-<UTC timestamp>.dump (pg_dump -Fc);
# `make restore FILE=...` puts one back (pg_restore --clean --if-exists, one transaction).
# Both use DATABASE_URL when set, else the private cluster's demo database.
BACKUP_DIR ?= var/backups

backup:
	@url="$(DEMO_DB)" && scripts/backup.sh backup "$$url" "$(BACKUP_DIR)"

restore:
	@url="$(DEMO_DB)" && scripts/backup.sh restore "$$url" "$(FILE)"
