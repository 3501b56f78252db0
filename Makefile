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

.PHONY: help setup setup-dev demo serve test test-pure lint lock bench stop backup restore

help:
	@echo "make demo   set up, load the demo city and serve http://127.0.0.1:$(PORT)"
	@echo "make test   set up and run the test suite against a real PostGIS"
	@echo "make test-pure  the tests that need no database (seconds; no PostGIS started)"
	@echo "make lint   ruff, mypy and the import-layering contract (CI runs it before the tests)"
	@echo "make bench  run the benchmarks (writes bench/RESULTS.md)"
	@echo "make serve  (re)start the serving front on the loaded data: nginx, the light and heavy lanes"
	@echo "make stop   stop the serving front and the private PostGIS cluster"
	@echo "make backup / make restore FILE=...   pg_dump / pg_restore the demo database"

# Python packages come from the locks (every transitive version pinned): requirements.lock for the
# app, requirements-dev.lock adds the test, benchmark and lint tools. `make lock` regenerates both
# from requirements.txt and requirements-dev.txt.
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

$(VENV)/.runtime: requirements.lock
	@echo "[setup] Python packages into $(VENV)"
	@test -x $(PY) || $(SYSPY) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements.lock
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	@echo "[setup] test, benchmark and lint tools into $(VENV)"
	@$(PIP) -r requirements-dev.lock
	@touch $@

lock: $(VENV)/.dev
	@$(VENV)/bin/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links -o requirements.lock requirements.txt
	@$(VENV)/bin/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links -c requirements.lock -o requirements-dev.lock requirements-dev.txt

node_modules/.installed: package.json package-lock.json
	@echo "[setup] front-end assets from the npm registry"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup:
	@scripts/system-deps.sh demo
	@$(MAKE) --no-print-directory $(VENV)/.runtime node_modules/.installed

setup-dev: setup
	@$(MAKE) --no-print-directory $(VENV)/.dev

demo: setup
	@url="$(DEMO_DB)" && export DATABASE_URL="$$url" && \
	  $(FLASK) db upgrade && $(FLASK) etl demo && $(PY) scripts/serve.py start --port $(PORT) && \
	  echo "Serving Minsheng Map on http://127.0.0.1:$(PORT)  (\`make stop\` stops it and the database; logs in var/front)"

# The serving front alone (nginx before the light and heavy gunicorn lanes), on the data already loaded.
serve: setup
	@url="$(DEMO_DB)" && DATABASE_URL="$$url" $(PY) scripts/serve.py start --port $(PORT)

test: setup-dev
	@scripts/system-deps.sh test
	@url="$(TEST_DB)" && export TEST_DATABASE_URL="$$url" && \
	  $(PY) -m pytest -q $(PYTEST_ARGS)

# The tests that need no database: no PostGIS is started or reached.
test-pure: $(VENV)/.dev
	@env -u TEST_DATABASE_URL -u DATABASE_URL $(PY) -m pytest -q -m "not db" $(PYTEST_ARGS)

lint: $(VENV)/.dev
	@echo "[lint] ruff" && $(VENV)/bin/ruff check .
	@echo "[lint] mypy" && $(VENV)/bin/mypy
	@echo "[lint] import layering" && $(VENV)/bin/lint-imports --no-cache

bench: setup-dev
	@scripts/system-deps.sh bench
	@url="$(TEST_DB)" && export TEST_DATABASE_URL="$$url" && $(PY) -m bench.run $(BENCH_ARGS)

stop:
	@if [ -f var/front/front.json ]; then $(SYSPY) scripts/serve.py stop; fi
	@if [ -f var/pgcluster.json ]; then $(SYSPY) scripts/pgcluster.py stop; else echo "no private cluster"; fi

# Backups: `make backup` writes var/backups/minsheng-<UTC timestamp>.dump (pg_dump -Fc) of the serving
# database; `make restore FILE=...` puts one back while the app keeps serving (into a fresh database, then
# every worker switches to it; see docs/operations.md). Both use DATABASE_URL when set, else the private
# cluster's demo database.
BACKUP_DIR ?= var/backups

backup: $(VENV)/.runtime
	@url="$(DEMO_DB)" && DATABASE_URL="$$url" $(FLASK) admin backup --dir "$(BACKUP_DIR)"

restore: $(VENV)/.runtime
	@[ -n "$(FILE)" ] || { echo "make restore needs FILE=var/backups/minsheng-....dump" >&2; exit 2; }
	@url="$(DEMO_DB)" && DATABASE_URL="$$url" $(FLASK) admin restore "$(FILE)"
