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
#   start-cluster    a 3-node Kafka cluster (kafka-1..3) on free ports in
#                    RUN_DIR beside the single broker, topics with 3 replicas;
#                    prints its bootstrap list
#   stop-cluster     SIGTERM every node of that cluster; data kept
#   kill-kafka-I, stop-kafka-I, start-kafka-I
#                    the same as the kafka commands, for node I of the
#                    cluster; start-kafka-I waits until every replica is in
#                    sync again
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
    sed -n '7,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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

# A 3-node cluster kafka-1..3 on free ports (see stk_start_kafka_cluster);
# prints its bootstrap list once every partition has 3 replicas in sync.
start_cluster() {
    local ports=() cports=() name i port
    if [[ -n $(stk_cluster_nodes "$RUN") ]]; then
        for name in $(stk_cluster_nodes "$RUN"); do
            ports+=("$(<"$RUN/$name.port")")
            cports+=("$(<"$RUN/$name.cport")")
        done
    else
        # Six distinct free ports (the kernel may hand one out twice).
        while ((${#ports[@]} + ${#cports[@]} < 6)); do
            port=$(stk_free_port)
            [[ " ${ports[*]} ${cports[*]} " == *" $port "* ]] && continue
            if ((${#ports[@]} < 3)); then ports+=("$port"); else cports+=("$port"); fi
        done
    fi
    for ((i = 0; i < ${#ports[@]}; i++)); do
        stk_alive "$RUN" "kafka-$((i + 1))" >/dev/null && continue
        stk_port_open "${ports[i]}" && tk_die "stackctl: port ${ports[i]} is taken by another process"
    done
    stk_start_kafka_cluster "$RUN" "${ports[*]}" "${cports[*]}" || exit 1
    stk_create_topics "$RUN" "$(stk_cluster_bootstrap "$RUN")" "${#ports[@]}" || exit 1
    stk_cluster_bootstrap "$RUN"
}

# Node NAME (kafka-I) of the cluster of RUN, started again; waits until every
# replica is in sync (the node has caught up).
start_node() {
    local name=$1
    stk_alive "$RUN" "$name" >/dev/null && return 0
    stk_restart_kafka_node "$RUN" "$name" || exit 1
    stk_create_topics "$RUN" "$(stk_cluster_bootstrap "$RUN")" "$(stk_cluster_nodes "$RUN" | wc -l)" || exit 1
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
    for name in kafka postgres ferretdb $(stk_cluster_nodes "$RUN"); do
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
    start-cluster) start_cluster ;;
    stop-cluster) stk_stop_kafka_cluster "$RUN" ;;
    kill-kafka-[0-9]*) crash "${CMD#kill-}" ;;
    stop-kafka-[0-9]*) stk_stop "$RUN" "${CMD#stop-}" 30 ;;
    start-kafka-[0-9]*) start_node "${CMD#start-}" ;;
    *) usage ;;
esac
