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

OS_VERSION="${SIDECAR_OS_VERSION:-2.19.6}"
OS_HEAP="${SIDECAR_OS_HEAP:-384m}"
RUN_USER="${SIDECAR_ES_USER:-esrunner}"
TIMEOUT="${SIDECAR_OS_TIMEOUT:-180}"
ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:${OS_VERSION}:zip"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$ROOT/.os"
DIST="$BASE/dist"
OS_HOME="$BASE/opensearch-$OS_VERSION"
DATA="$BASE/data"
LOGS="$BASE/logs"
PIDFILE="$BASE/os.pid"
URLFILE="$BASE/url"
CLUSTER="sidecar-test-os"
STARTUP_OUT="$LOGS/startup.out"

log() { echo "opensearch.sh: $*" >&2; }

log_tail() {
    local f
    for f in "$STARTUP_OUT" "$LOGS/$CLUSTER.log"; do
        if [[ -s "$f" ]]; then
            echo "----- last lines of ${f#"$ROOT"/} -----" >&2
            tail -n 60 "$f" >&2
        fi
    done
}

is_alive() {
    [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

health_ok() {  # $1 = url
    local body
    body="$(curl -fsS --max-time 15 "$1/_cluster/health?wait_for_status=yellow&timeout=10s" 2>/dev/null)" || return 1
    [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]]
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

java_major() {  # $1 = java home
    "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}

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

ensure_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        log "creating system user $RUN_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
    fi
}

as_run_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}

fetch_and_unpack() {
    if [[ -x "$OS_HOME/bin/opensearch" && -f "$OS_HOME/.unpacked" ]]; then
        return
    fi
    command -v mvn >/dev/null || { log "Maven (mvn) is required to fetch $ARTIFACT"; exit 1; }
    command -v unzip >/dev/null || { log "unzip is required"; exit 1; }
    mkdir -p "$DIST"
    log "fetching $ARTIFACT with Maven"
    if ! mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$DIST" \
        >"$BASE/mvn.log" 2>&1; then
        log "Maven could not resolve $ARTIFACT"
        tail -n 30 "$BASE/mvn.log" >&2
        exit 1
    fi
    rm -rf "$OS_HOME"
    unzip -q "$DIST/opensearch-$OS_VERSION.zip" -d "$BASE"
    rm -f "$DIST/opensearch-$OS_VERSION.zip"  # the local Maven repository keeps the cached copy
    touch "$OS_HOME/.unpacked"
}

cmd_up() {
    mkdir -p "$BASE"
    [[ -f "$BASE/.gitignore" ]] || echo '*' >"$BASE/.gitignore"
    if is_alive && [[ -f "$URLFILE" ]]; then
        local url attempt
        url="$(cat "$URLFILE")"
        for attempt in 1 2 3; do
            if health_ok "$url"; then
                log "reusing running node (pid $(cat "$PIDFILE"))"
                echo "$url"
                return 0
            fi
            sleep "$attempt"
        done
        log "node from a previous run is alive but not healthy; restarting it"
    fi
    cmd_down
    fetch_and_unpack
    local java_home major
    java_home="$(find_java)"
    major="$(java_major "$java_home")"
    ensure_user
    mkdir -p "$DATA" "$LOGS"
    : >"$STARTUP_OUT"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R "$RUN_USER" "$OS_HOME" "$DATA" "$LOGS"
        if ! runuser -u "$RUN_USER" -- test -r "$OS_HOME/bin/opensearch"; then
            log "user $RUN_USER cannot reach $OS_HOME (a parent folder is not traversable)"
            exit 1
        fi
    fi
    local node_pid="$LOGS/os.pid" port tport
    port="$(free_port)"
    tport="$(free_port)"
    log "starting OpenSearch $OS_VERSION on 127.0.0.1:$port with Java $major ($java_home)"
    # The launcher (-d) is left in the background, as in elasticsearch.sh: the node's pid file and its
    # health decide, not the launcher's exit (it has been seen to fail on a node that went on to serve).
    as_run_user env OPENSEARCH_JAVA_HOME="$java_home" OPENSEARCH_JAVA_OPTS="-Xms$OS_HEAP -Xmx$OS_HEAP" \
        "$OS_HOME/bin/opensearch" -d -p "$node_pid" \
        -E cluster.name="$CLUSTER" \
        -E node.name=sidecar-test-os-node \
        -E discovery.type=single-node \
        -E network.host=127.0.0.1 \
        -E http.port="$port" \
        -E transport.port="$tport" \
        -E path.data="$DATA" \
        -E path.logs="$LOGS" \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        -E action.destructive_requires_name=false \
        -E node.processors=1 \
        >>"$STARTUP_OUT" 2>&1 </dev/null &
    local url="http://127.0.0.1:$port" waited=0
    while ((waited < TIMEOUT)); do
        if [[ -s "$node_pid" ]]; then
            cp "$node_pid" "$PIDFILE"
            if ! is_alive; then
                log "OpenSearch exited during start-up"
                log_tail
                rm -f "$PIDFILE"
                exit 1
            fi
            if health_ok "$url"; then
                echo "$url" >"$URLFILE"
                log "ready after ${waited}s (pid $(cat "$PIDFILE"))"
                echo "$url"
                return 0
            fi
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "OpenSearch did not reach yellow/green health within ${TIMEOUT}s"
    log_tail
    exit 1
}

cmd_down() {
    if is_alive; then
        local pid i
        pid="$(cat "$PIDFILE")"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 60; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "node $pid did not stop in 30s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped node $pid"
    fi
    rm -f "$PIDFILE" "$URLFILE" "$LOGS/os.pid"
    rm -rf "$DATA"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
