# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := .demo
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint system-deps es-up es-down bench bench-redact clean

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
	@echo "== sidecar advise: the app's API hygiene (exit 1 here: the demo sends a key in a URL on purpose)"
	-SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar advise
	@echo "== one record in full (sidecar query --json --provider gcp.gemini --limit 1): secrets are masked"
	SIDECAR_SPOOL_DIR=$(DEMO_DIR)/spool $(VENV)/bin/sidecar query --json --provider gcp.gemini --limit 1 \
		| $(PY) -m json.tool --no-ensure-ascii

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check sidecar tests bench examples
	$(VENV)/bin/mypy

# Debian packages the tests need: Maven and unzip fetch the Elasticsearch test server;
# prometheus brings promtool and the server for the alert-rule tests.
system-deps:
	@missing=""; for c in mvn:maven unzip:unzip promtool:prometheus; do command -v $${c%%:*} >/dev/null || missing="$$missing $${c#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

es-up: system-deps
	bash scripts/elasticsearch.sh up

es-down:
	bash scripts/elasticsearch.sh down

# The whole suite against a real Elasticsearch started here (and stopped after, pass or fail).
test: lint system-deps
	@set -e; url=$$(bash scripts/elasticsearch.sh up | tail -n 1); \
	status=0; SIDECAR_TEST_ES_URL=$$url $(PY) -m pytest -q tests || status=$$?; \
	bash scripts/elasticsearch.sh down >/dev/null 2>&1 || true; \
	exit $$status

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py

# Redaction alone: precision and recall per type on the labelled corpus, then MB/s beside Presidio.
bench-redact: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/redact/eval_redact.py
	$(PY) bench/redact/bench_redact.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .es
