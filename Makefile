# One entry point for the local stack, tests and tooling. Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data/sample
OUT ?= out
# State of make demo and make up: warehouse, Airflow, buckets, pids, logs.
STATE ?= .local
# make up: the Airflow UI and API on 127.0.0.1:$(PORT).
PORT ?= 8080
# s3_csv: users and songs from DATA's CSVs; rds_postgres: from a seeded source database
METADATA_SOURCE ?= s3_csv

.DEFAULT_GOAL := help
.PHONY: help venv demo demo-reset up run upload down status test test-unit test-compat lint bench sample-data deploy-mwaa clean

# --compile-bytecode: uv, unlike pip, leaves .py files uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set (CI images often do) every process compiled
# Airflow's imports again: some 2.5 s per process, 7 s of a make demo run.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

## make demo [DATA=path/to/raw] [OUT=path/to/out] [METADATA_SOURCE=rds_postgres]: run the DAG on the local stack
demo: $(BIN)/.installed
	@$(BIN)/python -m localdev --state "$(STATE)" check-down --action "make demo"
	$(BIN)/python -m localdev.demo --data "$(DATA)" --out "$(OUT)" --state "$(STATE)" --metadata-source "$(METADATA_SOURCE)"

## make demo-reset: forget the local warehouse, Airflow state and buckets (refused while make up is up)
demo-reset:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m localdev --state "$(STATE)" check-down --action "make demo-reset"; fi
	rm -rf "$(STATE)"

## make up [DATA=path] [PORT=8080]: the local stack and Airflow (UI, scheduler, ...) in the background, DATA uploaded
up: $(BIN)/.installed
	$(BIN)/python -m localdev --state "$(STATE)" up --port "$(PORT)" --data "$(DATA)"

## make run [OUT=path]: trigger one DAG run on the stack of make up, follow it, write OUT as make demo does
run: $(BIN)/.installed
	$(BIN)/python -m localdev --state "$(STATE)" run --out "$(OUT)"

## make upload DATA=path: add a raw-bucket-shaped folder to the raw bucket of the stack of make up
upload: $(BIN)/.installed
	$(BIN)/python -m localdev --state "$(STATE)" upload --data "$(DATA)"

## make down: stop every process make up started; state (warehouse, buckets, Airflow) stays in STATE
down: $(BIN)/.installed
	$(BIN)/python -m localdev --state "$(STATE)" down

## make status: which processes of make up are running
status: $(BIN)/.installed
	@$(BIN)/python -m localdev --state "$(STATE)" status

## make help: this list
help:
	@grep -E '^## make ' $(MAKEFILE_LIST) | sed 's/^## //'

## make test: every tier (unit, sql, dag, integration, deploy), on the local stack
test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-unit: the fast tiers (unit, sql, dag), no warehouse or S3 stand-in
test-unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests/unit tests/sql tests/dag -m "not integration" $(PYTEST_ARGS)

# Airflow 3.0.6 with the Amazon MWAA pins: the oldest Airflow 3 that MWAA runs, on
# MWAA's Python 3.12 when this machine has one (tests/compat/find-python says which,
# else 3.11 with a note; COMPAT_PYTHON=... picks one). docs/mwaa.md, "Tested on MWAA's versions".
COMPAT_VENV := .venv-airflow-3.0
$(COMPAT_VENV)/.installed: tests/compat/requirements-airflow-3.0.txt tests/compat/constraints-airflow-3.0.6.txt
	rm -rf $(COMPAT_VENV)
	"$$(tests/compat/find-python)" -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(COMPAT_VENV)/bin/uv pip install --quiet --compile-bytecode --python $(COMPAT_VENV)/bin/python -r $< -c tests/compat/constraints-airflow-3.0.6.txt
	touch $@

## make test-compat: the tests that depend on Airflow's and the packages' versions, on Airflow 3.0.6 (MWAA's pins)
# Every tier but most of deploy: test_cloudformation.py and test_docker_files.py check the
# template and the Docker/Astro files, the same on any Airflow; test_secrets_backend.py's checker
# process calls the task SDK's lookups outside a task, which Airflow 3.0 answers only inside a
# task or the DAG processor.
COMPAT_TESTS := tests/unit tests/sql tests/dag tests/integration tests/deploy/test_mwaa_deploy.py tests/compat
test-compat: $(COMPAT_VENV)/.installed
	@$(COMPAT_VENV)/bin/python -c 'import sys, importlib.metadata as m; print("test-compat: Airflow", m.version("apache-airflow"), "on Python", sys.version.split()[0])'
	$(COMPAT_VENV)/bin/python -m pytest $(COMPAT_TESTS) $(PYTEST_ARGS)

## make lint: ruff, as CI runs it
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make deploy-mwaa ENV=<environment> [REGION=<region>] [ARGS=--dry-run]: upload dags/, include/ and the MWAA requirements (docs/mwaa.md)
deploy-mwaa: $(BIN)/.installed
	$(BIN)/python -m deploy.mwaa_deploy --environment "$(ENV)" $(if $(REGION),--region "$(REGION)") $(ARGS)

## make bench: speed and memory targets, as ratios against a floor measured in the same run
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## make sample-data: regenerate data/sample
sample-data: $(BIN)/.installed
	$(BIN)/python -m localdev.sample_data --out data/sample

## make clean: forget local state and remove the virtual environments
clean: demo-reset
	rm -rf $(VENV) $(COMPAT_VENV) $(OUT)
