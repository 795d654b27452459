# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := .demo
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit integration es-up es-down bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_DIR)
	@echo "== the application: instrumented calls to a loopback model server"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool SIDECAR_SERVICE_NAME=demo-app SIDECAR_USER_HEADER=x-user-id \
		$(PY) examples/demo_app.py
	@echo "== the sidecar: ship the spool to the embedded store"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar run --once
	@echo "== sidecar query: one record per model call"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar query
	@echo "== error-code summary (sidecar query --summary)"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar query --summary
	@echo "== one record in full (sidecar query --json --provider gcp.gemini --limit 1): secrets are masked"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar query --json --provider gcp.gemini --limit 1 \
		| $(PY) -m json.tool --no-ensure-ascii

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check sidecar tests bench examples
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q tests

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .es
