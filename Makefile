# Two commands matter: `make run` (the service with demo data) and `make test` (everything CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

MLFLOW_VENV := .venv-mlflow
MLFLOW_PORT ?= 5000

.PHONY: run test lint install migrate seed schema bench mlflow-ui clean

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
	$(BIN)/loyalgraph train all --if-no-champion
	$(BIN)/loyalgraph score --all --if-unscored --if-champion
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
	$(BIN)/python benchmarks/model_quality.py
	$(BIN)/python benchmarks/scoring.py

# The MLflow UI on the service's store, from its own environment at exactly the MLflow version
# of the service's client (one pin: pyproject.toml's mlflow-skinny==X; see api/cli_mlflow.py).
mlflow-ui: install
	$(BIN)/loyalgraph mlflow-ui --host 127.0.0.1 --port $(MLFLOW_PORT)

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) var .mypy_cache .pytest_cache .ruff_cache
