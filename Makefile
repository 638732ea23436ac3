# Two commands matter: `make run` (the service with demo data) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install migrate seed schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/loyalgraph migrate

run: migrate
	$(BIN)/loyalgraph seed-demo --if-empty
	$(BIN)/loyalgraph serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install
	$(BIN)/pytest

schema: install
	$(BIN)/loyalgraph export-schema > schema.graphql

bench: install
	$(BIN)/python benchmarks/graphql_profile.py
	$(BIN)/python benchmarks/loyalty_bench.py
	$(BIN)/python benchmarks/privacy_bench.py

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
