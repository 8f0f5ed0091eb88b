# Two commands for a new machine: `make run` (the monthly job on the bundled real data) and
# `make test` (lint, types and the test suite). Everything else is a step of those two.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/demand-forecasting
STAMP := $(VENV)/.installed-stamp
# First run: land the real history up to this month, then run the month after it.
CUTOFF ?= 2015-12
TARGET ?= dev
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help setup run test lint unit format ui benchmarks clean-state

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is needed for Spark: install openjdk-17-jre-headless" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[local,dev]"
	@touch $@

setup: $(STAMP) ## create .venv and install the project with its pinned dependencies

run: setup ## land the bundled real data (first time: history to CUTOFF) and run the monthly job locally
	$(CLI) land --until $(CUTOFF)
	$(CLI) run monthly --target $(TARGET)

test: setup lint ## lint, type-check and run the whole test suite
	$(PY) -m pytest

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

format: setup ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

ui: setup ## serve the MLflow UI on the local store (http://127.0.0.1:5000, loopback only)
	$(VENV)/bin/mlflow ui --backend-store-uri "sqlite:///$(CURDIR)/.local/mlflow/mlflow.db" \
		--default-artifact-root "$(CURDIR)/.local/mlflow/artifacts" --host 127.0.0.1 --port 5000

benchmarks: setup ## run the benchmark scripts (figures go to benchmarks/README.md by hand)
	for script in benchmarks/*.py; do $(PY) $$script || exit 1; done

clean-state: ## delete all local state (.local/: tables, checkpoints, MLflow store)
	rm -rf .local
