# The README's two commands are `make synth` and `make test`: each installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A real Node 22 binary, if installed by `make node22`, is preferred over the system Node 20.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
CDK := npx --no-install cdk
# Everything a synth or a test reads: rebuild the venv when one changes.
REQUIREMENTS := requirements.txt requirements-dev.txt container/requirements.txt

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: install
install: $(VENV)/.installed node_modules/.installed ## Install the pinned Python and Node dependencies

# ---------------------------------------------------------------- infrastructure (issue 2)
.PHONY: synth
synth: install ## Synthesize every environment into cdk.out/ (cdk-nag checked, offline)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) synth --quiet -c env=all

.PHONY: test
test: install ## Run the whole test suite (offline)
	$(PY) -m pytest

.PHONY: clean
clean: ## Remove build output (keeps the venv and node_modules)
	rm -rf cdk.out .build .pytest_cache
