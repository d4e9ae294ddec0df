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

# Waits (60 s at most) until a GET of URL answers STATUS while RUN/NAME lives.
# Usage: svc_wait_http RUN NAME URL STATUS
svc_wait_http() {
    local run=$1 name=$2 url=$3 status=$4 deadline=$((SECONDS + 60))
    until [[ $(svc_http_status "$url") == "$status" ]]; do
        stk_alive "$run" "$name" >/dev/null ||
            { tail -n 20 "$run/$name.log" >&2; tk_fail "$name exited; see $run/$name.log"; return 1; }
        ((SECONDS < deadline)) || { tk_fail "$url is not $status after 60s; see $run/$name.log"; return 1; }
        sleep 0.1
    done
}

# Waits until worker NAME of RUN logged an assignment of partitions after the
# byte offset in RUN/NAME.logoffset (0 without one), TIMEOUT s at most.
# Usage: svc_wait_worker RUN NAME TIMEOUT
svc_wait_worker() {
    local run=$1 name=$2 deadline=$((SECONDS + $3)) offset=0
    [[ -f $run/$name.logoffset ]] && offset=$(<"$run/$name.logoffset")
    until tail -c +$((offset + 1)) "$run/$name.log" 2>/dev/null |
            grep -q '"msg":"partitions assigned".*"partitions":\["ticket'; do
        stk_alive "$run" "$name" >/dev/null ||
            { tail -n 20 "$run/$name.log" >&2; tk_fail "$name exited; see $run/$name.log"; return 1; }
        ((SECONDS < deadline)) || { tk_fail "$name got no partitions within $3s; see $run/$name.log"; return 1; }
        sleep 0.1
    done
}
