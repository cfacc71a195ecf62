# Two commands from a bare machine with Python 3.11: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install prepare browser demo backfill bench test test-fast ui lint format clean

help:
	@echo "make demo   run the whole pipeline on data_samples/ and print where the results are"
	@echo "make test   lint, then the whole test suite (what CI runs)"
	@echo "make test-fast   the tests that do not run the whole pipeline (-m 'not e2e')"
	@echo "make ui     Dagster UI (asset graph, runs) on http://127.0.0.1:3000"
	@echo "make backfill FROM=2024-04 TO=2025-03   rebuild and republish a range of months"
	@echo "make bench SCALE=0.05   benchmark against plain DuckDB (figures in var/bench/)"
	@echo "make lint   ruff (check, format), sqlfluff on the dbt models, mypy on pipelines/"

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check uv

# --compile-bytecode: every run is a new Python process (a sensor's launch, a backfill), and
# where bytecode is not written at import (PYTHONDONTWRITEBYTECODE, a read-only venv) each
# one compiled Dagster, dbt and their libraries from source again: about 6 s of CPU a start
# (docs/benchmark.md, "Process start").
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

dbt_project/target/manifest.json: $(VENV)/.installed $(shell find dbt_project/models dbt_project/seeds dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml
	$(PY) -m pipelines.cli prepare

prepare: dbt_project/target/manifest.json

# ALLOW_SHRINK=1: publish even if facts fall sharply or an organisation disappears.
# CONFIRM_REGISTER=1: accept a register change larger than max_register_change_share.
RUN_FLAGS := $(if $(ALLOW_SHRINK),--allow-shrink,) $(if $(CONFIRM_REGISTER),--confirm-register,)

demo: prepare
	$(PY) -m pipelines.cli demo $(RUN_FLAGS)

# Headless Chromium for the dashboard's browser test (Debian's package; Playwright drives it
# with executable_path, so nothing is downloaded at test time), and poppler-utils'
# pdftotext, with which the board-report tests read the PDFs (tests/report/).
CHROMIUM ?= /usr/bin/chromium
PDFTOTEXT ?= /usr/bin/pdftotext
browser:
	@test -x $(CHROMIUM) -a -x $(PDFTOTEXT) || { \
	  echo "Installing Debian's chromium and poppler-utils for the browser and report tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; }

# make backfill FROM=2024-04 TO=2025-03: rebuild those months from raw and republish.
backfill: prepare
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=YYYY-MM TO=YYYY-MM"; exit 2; }
	$(PY) -m pipelines.cli backfill --from $(FROM) --to $(TO) $(RUN_FLAGS)

# make bench SCALE=0.05: national-scale data (1.0 = about 20,000 organisations, 10 years),
# plain DuckDB baseline (before and after) vs the full pipeline, one new file to
# publication, analyst queries; fails, printing no ratio, when a count does not match the
# generator (docs/benchmark.md).
# BENCH_FLAGS=--no-pdfs publishes the board reports as HTML only (docs/benchmark.md).
SCALE ?= 0.05
BENCH_FLAGS ?=
bench: prepare
	$(PY) -m pipelines.bench --scale $(SCALE) --out var/bench $(BENCH_FLAGS)

# make test: lint first (so CI lints), then everything, the 15 slowest tests listed at the
# end. make test-fast: the inner loop, without the tests marked e2e (docs/development.md).
# PYTEST_ARGS adds options, e.g. make test-fast PYTEST_ARGS="--basetemp=/tmp/mine".
PYTEST := $(PY) -m pytest -n 2 --dist loadfile --durations=15 $(PYTEST_ARGS)
test: lint prepare browser
	$(PYTEST)

test-fast: prepare browser
	$(PYTEST) -m "not e2e"

# make ui PORT=3001 for another port.
ui: prepare
	$(PY) -m pipelines.cli ui $(if $(PORT),--port $(PORT))

# The same checks run before each commit with pre-commit (.pre-commit-config.yaml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/sqlfluff lint dbt_project/models
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var dbt_project/target
