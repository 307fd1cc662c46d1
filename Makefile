# Huimin task list. `make help` lists the targets; every target installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install run test test-fast lint fmt bench bench-gateway ferretdb keycloak redis helm compose-check clean

help: ## Show this list of targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked
	@touch $@

install: $(VENV)/.synced ## Create .venv and install the locked dependencies

run: install ## Start the dev stack (embedded stores and issuer, demo data in var/) on 127.0.0.1, print URLs, users and examples; Ctrl-C stops it
	$(PY) -m tools.devstack

ferretdb: install ## Build the FerretDB v1.24.2 test server (cached outside the repo)
	$(PY) -m tools.ferretdb build

keycloak: install ## Fetch Keycloak 26.7.3 from Maven Central (cached outside the repo)
	$(PY) -m tools.keycloak fetch

helm: install ## Build Helm v3.19.0 from the Go module proxy for the chart checks (cached outside the repo)
	$(PY) -m tools.helm build

compose-check: install ## Build Docker Compose's loader (compose-go) for the compose checks (cached outside the repo)
	$(PY) -m tools.compose_check build

redis: install ## Unpack redis-server from Debian's packages unless on PATH (cached outside the repo)
	$(PY) -m tools.redis install

test: install ferretdb keycloak redis helm compose-check ## Run every test, with real servers (FerretDB, Keycloak, Redis) and the deployment checks (helm, compose-check)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## Run the tests that need no real server
	$(PY) -m pytest -m "not mongo and not keycloak and not slow"

lint: install ## Ruff (lint and format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared gateway services tools tests bench

fmt: install ## Format the code and apply safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ferretdb redis ## Storage, health (FHIR), registry (1,000,000 residents), education (200,000 resources), tourism (100,000 places) and gateway (vs nginx) benchmarks; writes bench/results/
	$(PY) -m bench.storage
	$(PY) -m bench.loadgen install
	$(PY) -m bench.health
	$(PY) -m bench.health --store mongo
	$(PY) -m bench.registry
	$(PY) -m bench.education
	$(PY) -m bench.tourism
	$(PY) -m bench.gateway

bench-gateway: install redis ## Only the gateway benchmark: gateway vs nginx (Debian's package), Redis-shared limit
	$(PY) -m bench.loadgen install
	$(PY) -m bench.gateway

clean: ## Remove the virtualenv, caches and var/ (demo data)
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache
