# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := .demo
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint system-deps es-up es-down es-cluster-up es-cluster-down os-up os-down bench bench-cluster \
	bench-redact clean

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
	$(VENV)/bin/ruff check sidecar tests bench examples tools
	$(VENV)/bin/mypy
	PYTHONPATH=tools $(VENV)/bin/lint-imports --no-cache
	$(PY) tools/sizes.py sidecar

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

# The whole suite. Most of it runs against one Elasticsearch node; the failover tests need a 3-node
# cluster and the OpenSearch tests an OpenSearch node: each server is started only for the tests that
# need it and stopped right after (pass or fail), so at most one kind runs at a time.
test: lint system-deps
	@set -e; status=0; \
	url=$$(bash scripts/elasticsearch.sh up | tail -n 1) || status=1; \
	SIDECAR_TEST_ES_URL=$$url $(PY) -m pytest -q tests \
		--ignore=tests/integration/cluster --ignore=tests/integration/opensearch || status=$$?; \
	bash scripts/elasticsearch.sh down >/dev/null 2>&1 || true; \
	urls=$$(bash scripts/elasticsearch.sh up --nodes 3 | tail -n 1) || status=1; \
	SIDECAR_TEST_ES_CLUSTER_URLS=$$urls $(PY) -m pytest -q tests/integration/cluster || status=$$?; \
	bash scripts/elasticsearch.sh down --nodes 3 >/dev/null 2>&1 || true; \
	os=$$(bash scripts/opensearch.sh up | tail -n 1) || status=1; \
	SIDECAR_TEST_OS_URL=$$os $(PY) -m pytest -q tests/integration/opensearch || status=$$?; \
	bash scripts/opensearch.sh down >/dev/null 2>&1 || true; \
	exit $$status

es-cluster-up: system-deps
	bash scripts/elasticsearch.sh up --nodes 3

es-cluster-down:
	bash scripts/elasticsearch.sh down --nodes 3

os-up: system-deps
	bash scripts/opensearch.sh up

os-down:
	bash scripts/opensearch.sh down

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py

# Shipping into a 3-node cluster: the shipper against a raw _bulk loader, four sidecars against one.
bench-cluster: $(VENV)/.installed system-deps
	$(PY) bench/cluster.py

# Redaction alone: precision and recall per type on the labelled corpus, then MB/s beside Presidio.
bench-redact: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/redact/eval_redact.py
	$(PY) bench/redact/bench_redact.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .es .os
