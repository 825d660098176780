# Every target sets itself up: a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_INPUT := data/input
DEMO_STORE := data/perf.duckdb
# The local Dagster instance: dagster_home/ holds its one dagster.yaml (in git) and, beside it,
# its storage (ignored). Another DAGSTER_HOME gets a copy of that file when it has none.
LOCAL_HOME   := $(CURDIR)/dagster_home
DAGSTER_HOME ?= $(LOCAL_HOME)
DEV_ARGS ?=  # options of `dg dev`, e.g. DEV_ARGS="--port 3001"

.PHONY: install test test-fast lint security demo dev bench lambda-zip clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# bandit over the code and checkov over the templates; accepted findings are listed with their
# reasons in pyproject.toml ([tool.bandit]) and .checkov.yaml.
security: install
	$(BIN)/bandit -q -c pyproject.toml -r perf_pipeline perf_contract lambda_trigger scripts
	$(BIN)/checkov --config-file .checkov.yaml -f template.yaml
	$(BIN)/checkov --config-file .checkov.yaml -d deploy

test: install lint security
	$(BIN)/pytest

# The unit tests only (no moto server, Dagster services or whole pipeline runs): the edit-run loop.
test-fast: install
	$(BIN)/pytest -m "not slow"

ifneq ($(abspath $(DAGSTER_HOME)),$(LOCAL_HOME))
$(DAGSTER_HOME)/dagster.yaml: dagster_home/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster_home/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
endif

demo: install $(DAGSTER_HOME)/dagster.yaml
	rm -rf $(DEMO_INPUT)
	$(BIN)/perf-pipeline generate --out $(DEMO_INPUT)
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/perf-pipeline run --input $(DEMO_INPUT) \
		--store $(DEMO_STORE) --target local
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/perf-pipeline report --store $(DEMO_STORE) --target local

dev: install $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) DAGSTER_HOME=$(DAGSTER_HOME) PERF_INPUT=$${PERF_INPUT:-$(DEMO_INPUT)} \
		PERF_STORE=$${PERF_STORE:-$(DEMO_STORE)} $(BIN)/dg dev $(DEV_ARGS)

bench: install
	$(BIN)/python bench/calc.py

lambda-zip: install
	$(BIN)/python scripts/build_lambda_zip.py

clean:
	rm -rf $(VENV) data build dist *.egg-info
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
