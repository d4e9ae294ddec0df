# shellcheck shell=bash
# Starts the service's own processes (gateway, workers) in a run directory
# of scripts/stack.sh and waits until they are ready; shared by ./dev up and
# bench/run.sh. Sourced after scripts/stack.sh. Functions are prefixed `svc_`.

# The HTTP status of a GET of URL ("000" when nothing answers).
svc_http_status() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# Spawns the gateway of RUN on 127.0.0.1:PORT with the Kafka BROKERS, the JWT
# secret RUN/jwt_secret and the command keys RUN/command_keys; VAR=VALUE
# settings follow. Usage: svc_spawn_gateway RUN BIN PORT BROKERS [VAR=VALUE...]
svc_spawn_gateway() {
    local run=$1 bin=$2 port=$3 brokers=$4
    shift 4
    stk_spawn "$run" gateway env PORT="$port" BIND_ADDRESS=127.0.0.1 GATEWAY_ID=0 KAFKA_BROKERS="$brokers" \
        JWT_SECRET="$(<"$run/jwt_secret")" COMMAND_KEYS_FILE="$run/command_keys" "$@" "$bin" || return 1
    echo "$port" >"$run/gateway.port"
}

# True when a GET of URL answers STATUS.
svc_http_is() {
    [[ $(svc_http_status "$1") == "$2" ]]
}

# Waits (60 s at most) until a GET of URL answers STATUS while RUN/NAME lives.
# Usage: svc_wait_http RUN NAME URL STATUS
svc_wait_http() {
    stk_wait_for "$1" "$2" 60 "$3 answering $4" svc_http_is "$3" "$4"
}

# True when worker NAME of RUN logged an assignment of partitions after the
# byte offset in RUN/NAME.logoffset (0 without one).
svc_worker_assigned() {
    local offset=0
    [[ -f $1/$2.logoffset ]] && offset=$(<"$1/$2.logoffset")
    tail -c +$((offset + 1)) "$1/$2.log" 2>/dev/null | grep -q '"msg":"partitions assigned".*"partitions":\["ticket'
}

# Waits until worker NAME of RUN holds partitions, TIMEOUT s at most.
# Usage: svc_wait_worker RUN NAME TIMEOUT
svc_wait_worker() {
    stk_wait_for "$1" "$2" "$3" "partitions assigned" svc_worker_assigned "$1" "$2"
}

# Names of the workers recorded in RUN (worker-1 ...), in number order.
svc_workers() {
    stk_numbered "$1" worker pid
}
