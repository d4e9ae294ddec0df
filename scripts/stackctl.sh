#!/usr/bin/env bash
# Stops and starts the broker or the database of a stack made by
# scripts/stack.sh (the private stack of `./dev test`, or `./dev up`'s .run)
# on the SAME ports and data directories, so a fault test can take one away
# and bring it back.
#
# usage: scripts/stackctl.sh RUN_DIR COMMAND
#   stop-kafka       SIGTERM the broker (SIGKILL after 30 s); data kept
#   kill-kafka       SIGKILL the broker (a crash); data kept
#   start-kafka      start it again on its port/controller port and data dir,
#                    then wait until every topic partition has a leader
#   stop-ferretdb    the database away: SIGTERM FerretDB (SIGKILL after 10 s),
#                    then a fast shutdown of its PostgreSQL; data kept
#   kill-ferretdb    the database crashes: SIGKILL FerretDB and every
#                    PostgreSQL process; committed data kept (crash recovery)
#   start-ferretdb   start PostgreSQL and FerretDB again, wait for ping
#   stop-postgres | kill-postgres | start-postgres
#                    the same for PostgreSQL alone (FerretDB up, failing)
#   status           "kafka|postgres|ferretdb PORT up|down", one per line
# start-* do nothing when the component already runs. Exit 0 on success.
# "ferretdb" is the database as the service sees it (mongod in production):
# with the PostgreSQL backend the fault suite's outage takes both away.
set -euo pipefail

TK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$TK_ROOT/scripts/common.sh"
# shellcheck source=scripts/stack.sh
source "$TK_ROOT/scripts/stack.sh"

usage() {
    sed -n '7,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

(($# == 2)) || usage
RUN=$1
CMD=$2
[[ -d $RUN ]] || tk_die "stackctl: no run directory $RUN"
RUN=$(cd "$RUN" && pwd)

# Port recorded by the start function (RUN/NAME.port).
recorded_port() {
    local file="$RUN/$1.port"
    [[ -s $file ]] || tk_die "stackctl: $file missing (was $1 ever started in $RUN?)"
    local port
    port=$(<"$file")
    [[ $port =~ ^[0-9]+$ ]] || tk_die "stackctl: bad port '$port' in $file"
    echo "$port"
}

# The controller port is only in the broker's configuration.
kafka_controller_port() {
    local props="$RUN/kafka/server.properties" cport
    [[ -f $props ]] || tk_die "stackctl: $props missing"
    cport=$(sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1:\([0-9]*\)$/\1/p' "$props")
    [[ $cport =~ ^[0-9]+$ ]] || tk_die "stackctl: no controller port in $props"
    echo "$cport"
}

start_kafka() {
    stk_alive "$RUN" kafka >/dev/null && return 0
    local port cport
    port=$(recorded_port kafka)
    cport=$(kafka_controller_port)
    stk_port_open "$port" && tk_die "stackctl: port $port is taken by another process"
    stk_start_kafka "$RUN" "$port" "$cport" || exit 1
    # Existing topics: only waits until every partition has a leader again.
    stk_create_topics "$RUN" "$port" || exit 1
}

start_postgres() {
    [[ $STK_FERRETDB_BACKEND == sqlite ]] && return 0
    stk_start_postgres "$RUN" || exit 1
}

start_ferretdb() {
    start_postgres
    stk_alive "$RUN" ferretdb >/dev/null && return 0
    local port
    port=$(recorded_port ferretdb)
    stk_port_open "$port" && tk_die "stackctl: port $port is taken by another process"
    stk_start_ferretdb "$RUN" "$port" || exit 1
}

# SIGKILL to the process group of RUN/NAME; returns once it is gone.
crash() {
    local name=$1 pid i
    if ! pid=$(stk_alive "$RUN" "$name"); then
        rm -f "$RUN/$name.pid"
        return 0
    fi
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 -- "-$pid" 2>/dev/null && tk_die "stackctl: $name (pid $pid) survived SIGKILL"
    rm -f "$RUN/$name.pid"
}

status() {
    local name state
    for name in kafka postgres ferretdb; do
        state=down
        stk_alive "$RUN" "$name" >/dev/null && state=up
        echo "$name $(cat "$RUN/$name.port" 2>/dev/null || echo -) $state"
    done
}

case $CMD in
    stop-kafka) stk_stop_kafka "$RUN" ;;
    kill-kafka) crash kafka ;;
    start-kafka) start_kafka ;;
    stop-ferretdb) stk_stop_database "$RUN" ;;
    kill-ferretdb) crash ferretdb && crash postgres ;;
    start-ferretdb) start_ferretdb ;;
    stop-postgres) stk_stop_postgres "$RUN" ;;
    kill-postgres) crash postgres ;;
    start-postgres) start_postgres ;;
    status) status ;;
    *) usage ;;
esac
