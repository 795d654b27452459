#!/usr/bin/env bash
# A real, single-node OpenSearch for the integration tests.
#
#   bash scripts/opensearch.sh up     # start (or reuse) a node; last stdout line is its URL
#   bash scripts/opensearch.sh down   # stop it and remove its data
#
# The server is OpenSearch's `integ-test-zip` distribution
# (org.opensearch.distribution.integ-test-zip:opensearch, packaging zip), fetched from Maven Central
# with Maven (the local Maven repository is the cache). It holds the server and its modules but no
# plugins: no security plugin (plain HTTP, no auth) and no Index State Management. OpenSearch 2.19.x
# runs on Java 17 or newer. Everything it writes lives under .os/ in the repository.
#
# Environment:
#   SIDECAR_OS_VERSION   distribution version (default below)
#   OPENSEARCH_JAVA_HOME Java 17+ home to use instead of the one found automatically
#   SIDECAR_OS_HEAP      heap size (default 384m)
#   SIDECAR_ES_USER      user to run as when started by root (default esrunner; OpenSearch refuses root)
#   SIDECAR_OS_TIMEOUT   seconds to wait for yellow/green health (default 180)
set -euo pipefail

SERVER_VERSION="${SIDECAR_OS_VERSION:-2.19.6}"
HEAP="${SIDECAR_OS_HEAP:-384m}"
RUN_USER="${SIDECAR_ES_USER:-esrunner}"
TIMEOUT="${SIDECAR_OS_TIMEOUT:-180}"
ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:${SERVER_VERSION}:zip"
SCRIPT_NAME="opensearch.sh"
SERVER_NAME="OpenSearch"
SERVER_BIN="opensearch"
JAVA_HOME_VAR="OPENSEARCH_JAVA_HOME"
JAVA_OPTS_VAR="OPENSEARCH_JAVA_OPTS"
STATE_DIR=".os"
PID_NAME="os.pid"
CLUSTER="sidecar-test-os"

# shellcheck source=scripts/_servers.sh
source "$(dirname "${BASH_SOURCE[0]}")/_servers.sh"

find_java() {
    if [[ -n "${OPENSEARCH_JAVA_HOME:-}" ]]; then
        echo "$OPENSEARCH_JAVA_HOME"
        return
    fi
    # 2.19.x supports Java 11 to 23: prefer a 17 or 21, then anything 17+ that is installed.
    local home major best=""
    for home in /usr/lib/jvm/*; do
        [[ -x "$home/bin/java" ]] || continue
        major="$(java_major "$home")"
        [[ -n "$major" ]] || continue
        if [[ "$major" == 17 || "$major" == 21 ]]; then
            echo "$home"
            return
        fi
        if [[ "$major" -ge 17 && -z "$best" ]]; then best="$home"; fi
    done
    if [[ -n "$best" ]]; then
        echo "$best"
        return
    fi
    log "no Java 17+ under /usr/lib/jvm (set OPENSEARCH_JAVA_HOME)"
    exit 1
}

# The launcher is not watched: it has been seen to fail on a node that went on to serve, so the
# node's pid file and its health alone decide.
cmd_up() {
    single_node_up 17 "" \
        -E cluster.name="$CLUSTER" \
        -E node.name=sidecar-test-os-node \
        -E discovery.type=single-node \
        -E node.processors=1
}

case "${1:-}" in
up) cmd_up ;;
down) single_node_down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
