# Workhorse: `make run` to start it, `make test` to test it. `make help` lists the rest.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install system-deps run test test-fast test-chaos check fmt bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e . --group test --group lint
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

system-deps:  ## install the Debian packages Workhorse uses (bubblewrap; fuse3 for tests), if missing
	@bash scripts/system-deps.sh

install: $(STAMP) system-deps  ## create .venv and install Workhorse with its test tools

run: install  ## start Workhorse on embedded SQLite: API on 127.0.0.1:8080 and a runner
	$(VENV)/bin/workhorse up

test: install  ## run the whole test suite (SQLite and PostgreSQL)
	$(PY) -m pytest -q

test-fast: install  ## unit and SQLite-only tests
	$(PY) -m pytest -q -m 'not postgres and not slow'

test-chaos: install  ## crash tests that kill processes (also part of make test)
	$(PY) -m pytest -q tests/chaos

check: install  ## lint, types, import layers
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: install  ## format the code
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

bench: install  ## run the benchmarks side by side with the peers (see docs/benchmarks.md)
	$(PY) bench/run.py

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) var .pytest_cache
