# kinline: `make run` serves the demo facility; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
KINLINE_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
export KINLINE_TEST_POSTGRES_URL

.PHONY: help setup run test lint typecheck migrations-check unit integration scenarios bench bench-floor bench-allocate clean vendor browser-setup

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## Create the virtual environment and install pinned dependencies.

vendor:  ## npm ci, then copy HTMX into the pages' static files (commit the copy).
	npm ci --no-audit --no-fund
	cp node_modules/htmx.org/dist/htmx.min.js src/kinline/web/static/htmx.min.js

# The browser tests drive Debian's chromium (Playwright cannot download its own
# here) and inject node_modules' axe-core.
browser-setup:  ## Chromium (apt) and axe-core (npm ci) for tests/browser, when missing.
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	test -d node_modules/axe-core || npm ci --no-audit --no-fund

# make run serves plain HTTP on 127.0.0.1, so its session cookies go without Secure.
run: setup  ## Migrate the embedded database, load the demo facility (once), serve on :8000 (or PORT=N).
	$(BIN)/kinline db upgrade
	$(BIN)/kinline demo --base-url http://127.0.0.1:$(PORT)
	KINLINE_INSECURE_COOKIES=1 $(BIN)/kinline serve --port $(PORT)

lint: setup  ## ruff, formatting and import layers.
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: setup  ## mypy, strict, on src/.
	$(BIN)/mypy

migrations-check: setup  ## The migrations build exactly the models' schema.
	rm -f .migrations-check.db
	KINLINE_DATABASE_URL=sqlite:///.migrations-check.db $(BIN)/alembic upgrade head
	KINLINE_DATABASE_URL=sqlite:///.migrations-check.db $(BIN)/alembic check
	rm -f .migrations-check.db

scenarios: setup  ## The SPEC's example scenarios and ours.
	$(BIN)/kinline scenario check ../shared/scenarios/*.yaml tests/scenarios/*.yaml

# Two workers (pytest-xdist) for two cores; loadgroup with the scheduler of
# tests/conftest.py keeps tests that share a module-scoped server on one worker.
# Bytecode may be written: pytest caches its assertion rewrite of every module it
# rewrites (hypothesis, anyio, the tests) only then, else each worker redoes it.
test: lint typecheck migrations-check browser-setup  ## Every check and the whole test suite.
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup

bench: setup  ## Benchmarks against their named baselines.
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/authorize.py
	$(BIN)/python bench/import_calls.py
	$(BIN)/python bench/allocate.py
	$(BIN)/python bench/report.py

bench-allocate: setup  ## A week's 5,000 visit requests: CP-SAT against first come, first served.
	$(BIN)/python bench/allocate.py

bench-floor: setup  ## kinline and the floor (bench/_floor.py) in one run of bench/authorize.py; the ratio last.
	$(BIN)/python bench/authorize.py

clean:  ## Remove the virtual environment and local databases.
	rm -rf $(VENV) kinline.db kinline.db-wal kinline.db-shm
