# Vetline: two commands on a fresh machine.
#   make demo   set up .venv, migrate the embedded SQLite database, load the demo organisation,
#               run the web server and the background worker
#   make test   set up the same way and run the whole suite
# DATABASE_URL / REDIS_URL in the environment switch the suite to PostgreSQL / Redis.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test setup lint typecheck format bench clean browser-deps node-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; nothing is downloaded).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "WARNING: could not install chromium; browser tests will fail"; }

# The local AT Protocol network the Bluesky tests start (pinned @atproto/dev-env, from the
# committed package-lock.json). Without node the tests skip loudly (and fail under CI).
BSKY_DEVENV := vetline/connectors/bluesky/devenv
node-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  [ -d $(BSKY_DEVENV)/node_modules/@atproto/dev-env ] || \
	    (cd $(BSKY_DEVENV) && npm ci --no-audit --no-fund --loglevel=error); \
	else echo "WARNING: npm not found; the Bluesky reference-server tests will not run"; fi

demo: setup
	$(BIN)/vetline demo

test: setup browser-deps node-deps
	VETLINE_ENV=test $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check vetline bench
	$(BIN)/ruff format --check vetline bench
	$(BIN)/mypy vetline

format: setup
	$(BIN)/ruff format vetline bench
	$(BIN)/ruff check --fix vetline bench

$(VENV)/.bench-installed: $(STAMP) requirements-bench.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-bench.lock
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
