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

.PHONY: venv demo demo-reset up run upload down status test test-compat lint bench sample-data deploy-mwaa clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

## make demo [DATA=path/to/raw] [OUT=path/to/out] [METADATA_SOURCE=rds_postgres]: run the DAG on the local stack
demo: $(BIN)/.installed
	@$(BIN)/python -m localdev --state "$(STATE)" check-down --action "make demo"
	$(BIN)/python -m include.music_kpis.demo --data "$(DATA)" --out "$(OUT)" --state "$(STATE)" --metadata-source "$(METADATA_SOURCE)"

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

## make test: DAG integrity, unit, Redshift-rendering and integration tests
test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Airflow 3.0.6 with the Amazon MWAA pins: the oldest Airflow 3 that MWAA runs.
COMPAT_VENV := .venv-airflow-3.0
$(COMPAT_VENV)/.installed: tests/compat/requirements-airflow-3.0.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(COMPAT_VENV)/bin/uv pip install --quiet --python $(COMPAT_VENV)/bin/python -r $<
	touch $@

## make test-compat: DAG-integrity, SQL-rendering and unit tests on Airflow 3.0.6 (MWAA's pins)
test-compat: $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/python -m pytest tests/test_dag_integrity.py tests/test_redshift_rendering.py tests/unit $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make deploy-mwaa ENV=<environment> [REGION=<region>] [ARGS=--dry-run]: upload dags/, include/ and the MWAA requirements (docs/mwaa.md)
deploy-mwaa: $(BIN)/.installed
	$(BIN)/python -m deploy.mwaa_deploy --environment "$(ENV)" $(if $(REGION),--region "$(REGION)") $(ARGS)

## make bench: speed and memory targets, as ratios against a floor measured in the same run
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

sample-data: $(BIN)/.installed
	$(BIN)/python -m include.music_kpis.sample_data --out data/sample

clean: demo-reset
	rm -rf $(VENV) $(COMPAT_VENV) $(OUT)
