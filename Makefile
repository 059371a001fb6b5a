# cmd-har: the two commands a newcomer runs are `make run` and `make test`.
# Each builds .venv if missing, installs the locked dependencies, sets up ZenML / DVC /
# MLflow state inside this checkout (idempotently), then does its job.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
UV_VERSION ?= 0.13.9
UV_VENV := .cache/uv-$(UV_VERSION)
UV := $(UV_VENV)/bin/uv
PYTEST_ARGS ?=
TEST_WORKERS ?= 2   # pytest-xdist processes for make test (most tests wait on subprocesses and servers)

# -- local state lives inside the checkout (git-ignored); delete it to start over ------
export ZENML_CONFIG_PATH := $(CURDIR)/.zenml
export BENTOML_HOME := $(CURDIR)/.bentoml
export HAR_CACHE_DIR ?= $(CURDIR)/.cache
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/.mlflow/mlflow.db
# -- telemetry off, quiet logs -------------------------------------------------------------
export ZENML_ANALYTICS_OPT_IN := false
export BENTOML_DO_NOT_TRACK := true
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export ZENML_LOGGING_VERBOSITY ?= WARNING
export ZENML_ENABLE_RICH_TRACEBACK := false

STACK ?= har_local
INSTALLED := $(VENV)/.installed
INITIALISED := .zen/.initialised

.PHONY: help run test test-fast setup install lint data data-status mlflow-ui env clean-state rehearsal cluster-lock

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	@touch $@

install: $(INSTALLED) ## create .venv and install the locked dependencies

$(INITIALISED): $(INSTALLED)
	@mkdir -p .mlflow .cache/dvc-remote
	@test -d .zen || $(BIN)/zenml init >/dev/null 2>&1
	@$(BIN)/zenml experiment-tracker describe mlflow_tracker >/dev/null 2>&1 || \
	  $(BIN)/zenml experiment-tracker register mlflow_tracker --flavor=mlflow \
	    --tracking_uri="$(MLFLOW_TRACKING_URI)" >/dev/null
	@$(BIN)/zenml stack describe $(STACK) >/dev/null 2>&1 || \
	  $(BIN)/zenml stack register $(STACK) -o default -a default -e mlflow_tracker >/dev/null
	@$(BIN)/zenml stack set $(STACK) >/dev/null 2>&1
	@test -d .dvc || $(BIN)/dvc init -q
	@touch $@
	@echo "local state ready: ZenML $(ZENML_CONFIG_PATH) (stack $(STACK)), MLflow $(MLFLOW_TRACKING_URI), DVC remote .cache/dvc-remote"

setup: $(INITIALISED) ## install + initialise ZenML, DVC and MLflow state (idempotent)

run: setup ## run the main job: train_pipeline on the default dataset (DSADS, holdout)
	$(BIN)/har train -c configs/train.yaml

data: setup ## only the data stages (import, validate, version, window, split)
	$(BIN)/har data pipeline -c configs/data.yaml

mlflow-ui: $(INSTALLED) ## browse runs, metrics, plots and registered models (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)"

test: setup ## run the whole test suite: tests/unit, tests/integration, tests/e2e (slow tests included), TEST_WORKERS=2 processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: $(INSTALLED) ## only tests/unit: no dataset import, no training (seconds)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

$(VENV)/.installed-rehearsal: $(INSTALLED)
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev,rehearsal]"
	@touch $@

rehearsal: $(VENV)/.installed-rehearsal ## train_pipeline + a small benchmark_pipeline, one container per step, S3 + MLflow server (needs Docker)
	$(BIN)/python deployment/rehearsal/rehearse.py

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install -q "uv==$(UV_VERSION)"

cluster-lock: $(INSTALLED) $(UV) ## requirements-cluster.lock: the cluster image's packages, pinned + hashed (PyPI + CPU torch index)
	$(BIN)/python deployment/cluster_lock.py --uv $(UV)

lint: $(INSTALLED) ## ruff
	$(BIN)/ruff check cli components steps pipelines tests benchmarks deployment har_runtime

data-status: $(INSTALLED) ## data version, datasets, dvc status
	$(BIN)/har data status

env: ## print the environment for running zenml/mlflow/dvc/har by hand: eval "$$(make -s env)"
	@echo 'export ZENML_CONFIG_PATH="$(ZENML_CONFIG_PATH)" BENTOML_HOME="$(BENTOML_HOME)"'
	@echo 'export HAR_CACHE_DIR="$(HAR_CACHE_DIR)" MLFLOW_TRACKING_URI="$(MLFLOW_TRACKING_URI)"'
	@echo 'export ZENML_ANALYTICS_OPT_IN=false BENTOML_DO_NOT_TRACK=true GX_ANALYTICS_ENABLED=false'
	@echo 'export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true ZENML_LOGGING_VERBOSITY=$(ZENML_LOGGING_VERBOSITY)'
	@echo 'export PATH="$(CURDIR)/$(BIN):$$PATH"'

clean-state: ## delete local state (venv kept): ZenML, MLflow, caches, data/
	rm -rf .zen .zenml .mlflow .cache artifacts data
