# Shared by elasticsearch.sh and opensearch.sh (sourced, not run): fetching the integ-test-zip from
# Maven Central, choosing and checking Java, the user the server runs as, starting one node with its
# launcher left in the background, waiting for health, and stopping a node by its pid.
#
# The sourcing script sets, before sourcing this file:
#   SCRIPT_NAME    prefix of log lines            SERVER_NAME     "Elasticsearch" / "OpenSearch"
#   SERVER_BIN     launcher name (in bin/)        SERVER_VERSION  distribution version
#   ARTIFACT       Maven coordinates of the zip   STATE_DIR       folder under the repository (.es, .os)
#   CLUSTER        single node's cluster name     PID_NAME        single node's pid file name
#   HEAP           single node's heap             RUN_USER        user to run as under root
#   TIMEOUT        seconds to wait for health
#   JAVA_HOME_VAR, JAVA_OPTS_VAR  the launcher's environment variable names for Java and its options
# and defines find_java (prints a Java home; the rules differ per server).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="$ROOT/$STATE_DIR"
SERVER_HOME="$BASE/$SERVER_BIN-$SERVER_VERSION"
DATA="$BASE/data"
LOGS="$BASE/logs"
PIDFILE="$BASE/$PID_NAME"      # the script's copy
NODE_PIDFILE="$LOGS/$PID_NAME"  # written by the node: somewhere the node's user may write
URLFILE="$BASE/url"
LOGFILE="$LOGS/$CLUSTER.log"
STARTUP_OUT="$LOGS/startup.out"

log() { echo "$SCRIPT_NAME: $*" >&2; }

log_tail() {
    local f
    for f in "$STARTUP_OUT" "$LOGFILE"; do
        if [[ -s "$f" ]]; then
            echo "----- last lines of ${f#"$ROOT"/} -----" >&2
            tail -n 60 "$f" >&2
        fi
    done
}

prepare_base() {
    mkdir -p "$BASE"
    [[ -f "$BASE/.gitignore" ]] || echo '*' >"$BASE/.gitignore"
}

pid_alive() {  # $1 = pid file
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

is_alive() { pid_alive "$PIDFILE"; }

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

checked_java() {  # $1 = lowest major version; prints the home find_java picks, or exits
    local java_home major
    java_home="$(find_java)"
    major="$(java_major "$java_home")"
    if [[ -z "$major" || "$major" -lt "$1" ]]; then
        log "Java $1+ needed; $java_home reports '${major:-nothing}'"
        exit 1
    fi
    echo "$java_home"
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
    if [[ -x "$SERVER_HOME/bin/$SERVER_BIN" && -f "$SERVER_HOME/.unpacked" ]]; then
        return
    fi
    command -v mvn >/dev/null || { log "Maven (mvn) is required to fetch $ARTIFACT"; exit 1; }
    command -v unzip >/dev/null || { log "unzip is required"; exit 1; }
    local dist="$BASE/dist" zip="$BASE/dist/${SERVER_HOME##*/}.zip"
    mkdir -p "$dist"
    log "fetching $ARTIFACT with Maven"
    if ! mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$dist" \
        >"$BASE/mvn.log" 2>&1; then
        log "Maven could not resolve $ARTIFACT"
        tail -n 30 "$BASE/mvn.log" >&2
        exit 1
    fi
    rm -rf "$SERVER_HOME"
    unzip -q "$zip" -d "$BASE"
    rm -f "$zip"  # the local Maven repository keeps the cached copy
    touch "$SERVER_HOME/.unpacked"
}

launch_node() {  # $1 = java home, $2 = heap, $3 = pid file, $4 = output file, then -E settings
    local java_home="$1" heap="$2" node_pid="$3" out="$4"
    shift 4
    # The launcher (-d) is left in the background: it normally returns once the node is up, but it has
    # been seen to stay waiting on a node that serves; the node's pid file and its health decide.
    as_run_user env "$JAVA_HOME_VAR=$java_home" "$JAVA_OPTS_VAR=-Xms$heap -Xmx$heap" \
        "$SERVER_HOME/bin/$SERVER_BIN" -d -p "$node_pid" \
        -E network.host=127.0.0.1 \
        -E cluster.routing.allocation.disk.threshold_enabled=false \
        -E action.destructive_requires_name=false \
        "$@" \
        >>"$out" 2>&1 </dev/null &
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

# ------------------------------------------------------------------ one node
reuse_running_node() {  # prints the URL of a live, healthy node from an earlier `up`
    is_alive && [[ -f "$URLFILE" ]] || return 1
    local url attempt
    url="$(cat "$URLFILE")"
    # A busy machine can make a healthy node slow to answer: ask a few times before restarting
    # it (a restart would pull the node out from under anyone else using it).
    for attempt in 1 2 3; do
        if health_ok "$url"; then
            log "reusing running node (pid $(cat "$PIDFILE"))"
            echo "$url"
            return 0
        fi
        sleep "$attempt"
    done
    log "node from a previous run is alive but not healthy; restarting it"
    return 1
}

prepare_node_dirs() {
    ensure_user
    mkdir -p "$DATA" "$LOGS"
    : >"$STARTUP_OUT"
    rm -f "$LOGFILE" "$NODE_PIDFILE"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R "$RUN_USER" "$SERVER_HOME" "$DATA" "$LOGS"
        if ! runuser -u "$RUN_USER" -- test -r "$SERVER_HOME/bin/$SERVER_BIN"; then
            log "user $RUN_USER cannot reach $SERVER_HOME (a parent folder is not traversable)"
            exit 1
        fi
    fi
}

wait_single_node() {  # $1 = url, $2 = launcher pid to watch ("" to judge by the node alone)
    local url="$1" launcher="$2" waited=0
    while ((waited < TIMEOUT)); do
        if [[ -n "$launcher" ]] && ! kill -0 "$launcher" 2>/dev/null; then
            if ! wait "$launcher"; then
                log "$SERVER_NAME failed to start"
                log_tail
                exit 1
            fi
            launcher=""
        fi
        if [[ -s "$NODE_PIDFILE" ]]; then
            cp "$NODE_PIDFILE" "$PIDFILE"
            if ! is_alive; then
                log "$SERVER_NAME exited during start-up"
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
    log "$SERVER_NAME did not reach yellow/green health within ${TIMEOUT}s"
    log_tail
    exit 1
}

# $1 = lowest Java major, $2 = "watch" to fail as soon as the launcher fails, then the node's own
# -E settings (cluster and node names, discovery, ...). Prints the node's URL last.
single_node_up() {
    local min_java="$1" watch="$2"
    shift 2
    prepare_base
    reuse_running_node && return 0
    single_node_down
    fetch_and_unpack
    local java_home port tport
    java_home="$(checked_java "$min_java")"
    prepare_node_dirs
    port="$(free_port)"
    tport="$(free_port)"
    log "starting $SERVER_NAME $SERVER_VERSION on 127.0.0.1:$port with Java $(java_major "$java_home") ($java_home)"
    launch_node "$java_home" "$HEAP" "$NODE_PIDFILE" "$STARTUP_OUT" \
        -E http.port="$port" -E transport.port="$tport" -E path.data="$DATA" -E path.logs="$LOGS" "$@"
    local launcher=$!
    [[ "$watch" == watch ]] || launcher=""
    wait_single_node "http://127.0.0.1:$port" "$launcher"
}

single_node_down() {
    if is_alive; then stop_pid "$(cat "$PIDFILE")" node; fi
    rm -f "$PIDFILE" "$URLFILE" "$NODE_PIDFILE"
    rm -rf "$DATA"
}
