# evalfleet: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The real-server test tier's extra (README "Real-server tests"): llama-cpp-python builds from
# source once (minutes), then pip's cache holds the wheel.
REALSERVER := $(VENV)/.realserver
# Top-level folders installed as subpackages of `evalfleet` (pyproject.toml's package-dir).
SUBPACKAGES := schema producer workers aggregator simulator

.PHONY: install demo test unit integration realserver-test cluster-test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(REALSERVER): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev,realserver]"
	touch $(REALSERVER)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/evalfleet demo

# The whole suite, the real-server tier included (CI runs this).
test: $(STAMP) $(REALSERVER)
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP) $(REALSERVER)
	$(BIN)/pytest tests/integration

realserver-test: $(REALSERVER)
	$(BIN)/pytest -m real_server tests/integration/real_server

# The cluster on real containers (bench/cluster.py; as root: it may install docker.io,
# docker-compose and debootstrap, start dockerd and build local images). Its last line is JSON.
cluster-test: $(STAMP)
	cd bench && ../$(BIN)/python cluster.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# mypy reads packages from folders: a tree of links lays the folders out as they install
	@# (`schema/` as `evalfleet/schema`, pyproject.toml's package-dir).
	@rm -rf build/typecheck && mkdir -p build/typecheck/evalfleet
	@for e in evalfleet/*; do ln -s ../../../$$e build/typecheck/evalfleet/; done
	@for p in $(SUBPACKAGES); do ln -s ../../../$$p build/typecheck/evalfleet/$$p; done
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p evalfleet

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .evalfleet evalfleet.db evalfleet.db-*
