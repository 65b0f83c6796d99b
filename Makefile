# The commands a person types. Everything installs into .venv; nothing else is needed
# but Python 3.11, git and make.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint format bench clean browser schema

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Re-install when pyproject.toml changes.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[examples]"
	touch $@

# PyTorch first, at the release the integrations extra pins: its CPU build, where the machine
# has one at hand (pip's find-links), rather than a CUDA build of several GB.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev]"
	touch $@ $(VENV)/.base

demo: $(VENV)/.base ## run the bundled examples on the default SQLite store and show them
	$(BIN)/python examples/iris.py
	cd examples && LABKEEP_HOME=$(CURDIR)/.labkeep ../$(BIN)/labkeep run -e digits --quiet digits.py hidden=16 lr=0.01
	cd examples && LABKEEP_HOME=$(CURDIR)/.labkeep ../$(BIN)/labkeep run -e digits --quiet digits.py hidden=64 lr=0.005
	$(BIN)/labkeep runs
	$(BIN)/labkeep compare -e digits
	@echo "See one run with: .venv/bin/labkeep show last    The web UI: .venv/bin/labkeep ui"

# Two workers, a test file each at a time (files keep their servers and fixtures to themselves).
test: $(VENV)/.dev browser ## the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The UI's browser tests drive Debian's chromium (Playwright's own browser download is not
# possible offline). Installed when missing and we may; otherwise the browser tests say why
# they are skipped (and fail under CI).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: browser tests will not run"; \
	  else echo "no /usr/bin/chromium (run: sudo apt-get install chromium): browser tests will not run"; fi; \
	fi

lint: $(VENV)/.dev ## ruff, mypy --strict, and the layers of ARCHITECTURE.md (import-linter)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy --strict src/
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff check --fix src tests benchmarks examples
	$(BIN)/ruff format src tests benchmarks examples

schema: $(VENV)/.dev ## regenerate schema_sqlite.sql from the SQLAlchemy models (after a schema change)
	$(BIN)/python -m labkeep.store.sql._ddl

bench: $(VENV)/.dev ## benchmarks against MLflow and Guild; writes benchmarks/RESULTS.md
	@# An installed package has its bytecode compiled; an editable checkout may not (and
	@# PYTHONDONTWRITEBYTECODE stops it being cached), which would time the compiler too.
	$(BIN)/python -m compileall -q src
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .labkeep .bench build dist src/*.egg-info
