#!/usr/bin/env bash
# ./dev bench: throughput, latency and CPU cost of the ticket service on a
# fresh stack of its own (Kafka, FerretDB, workers, gateway on free ports in
# a temporary run directory, stopped on exit). Method: BENCHMARKS.md.
#
# The load comes from bench/loadgen.c (built here with cc into .cache/bench).
# Results: markdown tables on stdout and in .cache/bench/latest.md.
set -euo pipefail

TK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$TK_ROOT"
# shellcheck source=scripts/common.sh
source "$TK_ROOT/scripts/common.sh"
# shellcheck source=scripts/stack.sh
source "$TK_ROOT/scripts/stack.sh"
# shellcheck source=scripts/service.sh
source "$TK_ROOT/scripts/service.sh"
# shellcheck source=scripts/deps.sh
source "$TK_ROOT/scripts/deps.sh" # tk_apt_install, for perf on demand
# shellcheck source=bench/latency.sh
source "$TK_ROOT/bench/latency.sh" # the scaling-latency step

BUILD="${TICKET_BUILD_DIR:-$TK_ROOT/build}"
GATEWAY_BIN="$BUILD/gateway/ticket-gateway"
WORKER_BIN="$BUILD/worker/ticket-worker"
OUT_DIR="$TK_ROOT/.cache/bench"
LOADGEN="$OUT_DIR/loadgen"
DB_NAME=ticketing_bench

usage() {
    cat <<'EOF'
usage: ./dev bench [--quick] [--duration S] [--rate R] [--connections N] [--workers N]
                   [--hold N] [--profile] [--only STEPS] [--keep] [--tickets N]

  --quick          everything short (about 2 minutes in all); a smoke run for CI
  --duration S     measured seconds of each throughput run (default 15, quick 2)
  --rate R         open-loop create-ticket rate (default: half the closed-loop peak)
  --connections N  connections of the closed-loop runs (default 64)
  --workers N      worker processes for the workload table (default 1)
  --hold N         waiting requests of the memory test (default 10000, quick 2000)
  --profile        also profile gateway and worker under create-ticket load (perf)
  --only STEPS     comma list of: healthz,admin,list,latency,reply,mix,reads,create,scaling,hold,walk,
                   dbprobe,baseline,profile,scaling-latency,reply-trips (reply-trips, only when named:
                   the reply step through bench/delayproxy.c with no delay, printing the
                   workers' database round trips per reply; scaling-latency, full runs only: workers
                   1, 2, 4 and WORKER_THREADS 1..8 with DB_LATENCY_MS=2 between workers and database,
                   bench/latency.sh; reads: get-ticket and a team list's first page at one
                   connection; walk: the admin list page by page; both skip themselves
                   while the API has no such route or paging; baseline: bench/baseline, Express +
                   Mongoose on the same FerretDB, after ours: mix, create at c=1 and at c=N, and
                   the ratios to ours, e.g. --only mix,latency,create,baseline)
  --keep           keep the run directory (logs) even on success
  --tickets N      first preload N tickets in 500 teams straight into the database
                   (bench/preload.py); e.g. --tickets 100000 --only dbprobe
FERRETDB_BACKEND=sqlite ./dev bench ... measures the old SQLite backend.
WARM_UP=S ./dev bench ...: seconds of unmeasured team-list reads that warm each
stack (ours, then the baseline's) before its runs (default 60, quick 2; 0: none).

Tables go to stdout and .cache/bench/latest.md; see BENCHMARKS.md.
Throughput and latency count 2xx answers only. Any error answer (non-2xx,
socket, connect, timeout) in a measured run fails the bench (exit 1) after
the tables are printed; speed never does.
EOF
}

# ---------------------------------------------------------------- options

QUICK=0 DURATION="" RATE="" CONNS=64 WORKERS=1 HOLD="" PROFILE=0 ONLY="" KEEP=0 PRELOAD=0
while (($#)); do
    case $1 in
        --quick) QUICK=1; shift ;;
        --duration) DURATION=${2:-}; shift 2 || tk_die "--duration needs seconds" ;;
        --rate) RATE=${2:-}; shift 2 || tk_die "--rate needs a number" ;;
        --connections) CONNS=${2:-}; shift 2 || tk_die "--connections needs a number" ;;
        --workers) WORKERS=${2:-}; shift 2 || tk_die "--workers needs a number" ;;
        --hold) HOLD=${2:-}; shift 2 || tk_die "--hold needs a number" ;;
        --profile) PROFILE=1; shift ;;
        --only) ONLY=${2:-}; shift 2 || tk_die "--only needs a list" ;;
        --keep) KEEP=1; shift ;;
        --tickets) PRELOAD=${2:-}; shift 2 || tk_die "--tickets needs a number" ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; tk_die "unknown option for bench: $1" ;;
    esac
done
is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
[[ -z $DURATION ]] || is_number "$DURATION" || tk_die "--duration must be a number of seconds"
[[ -z $RATE ]] || is_number "$RATE" || tk_die "--rate must be a number"
is_count "$CONNS" || tk_die "--connections must be a positive number"
is_count "$WORKERS" || tk_die "--workers must be a positive number"
[[ -z $HOLD ]] || is_count "$HOLD" || tk_die "--hold must be a positive number"
[[ $PRELOAD == 0 ]] || is_count "$PRELOAD" || tk_die "--tickets must be a positive number"

if ((QUICK)); then
    DURATION=${DURATION:-2} WARMUP=0.5 LAT_DURATION=2 SCALE_DURATION=2 HOLD=${HOLD:-2000} WARM_UP=${WARM_UP:-2}
    SEED_OTHER=100 SEED_REPLY=100 PROFILE_SECONDS=3 PROFILE_HZ=1999 IDLE_SECONDS=2
else
    DURATION=${DURATION:-15} WARMUP=3 LAT_DURATION=10 SCALE_DURATION=10 HOLD=${HOLD:-10000} WARM_UP=${WARM_UP:-60}
    SEED_OTHER=100 SEED_REPLY=200 PROFILE_SECONDS=10 PROFILE_HZ=2999 IDLE_SECONDS=5
fi
SEED_LIST=100            # the team of the team-list workload
WORKER_THREADS=${WORKER_THREADS:-4}
OPEN_CONNS=256           # connections of the open-loop runs (a pool, not the load)
# Reads and replies are bound by the database (FerretDB scans, BENCHMARKS.md):
# fewer connections give the same throughput without 5 s queues and 504s.
DB_CONNS=$((CONNS / 8 > 0 ? CONNS / 8 : 1))

STEPS=${ONLY:-healthz,admin,list,latency,reply,mix,reads,create,scaling,hold,walk,dbprobe,baseline}
# Workers with the database DB_LATENCY_MS away: about 4 minutes, full runs only.
[[ -n $ONLY ]] || ((QUICK)) || STEPS+=",scaling-latency"
((PROFILE)) && STEPS+=",profile"
want() { [[ ,$STEPS, == *,$1,* ]]; }

for tool in cc curl; do tk_need "$tool" "install build-essential and curl (./dev deps)"; done
[[ -x $GATEWAY_BIN && -x $WORKER_BIN ]] || tk_die "no binaries in $BUILD (./dev build first)"

# Open files: HOLD client sockets in the load generator and as many in the gateway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < HOLD + 1024)); then
    tk_warn "open-files limit $(ulimit -n) is too low for --hold $HOLD; using $(($(ulimit -n) - 1024))"
    HOLD=$(($(ulimit -n) - 1024))
fi

# ------------------------------------------------------------- load generator

mkdir -p "$OUT_DIR"
if [[ ! -x $LOADGEN || $TK_ROOT/bench/loadgen.c -nt $LOADGEN ]]; then
    tk_info "building the load generator (bench/loadgen.c) ..."
    cc -O2 -g -Wall -Wextra -o "$LOADGEN.tmp" "$TK_ROOT/bench/loadgen.c" -lpthread -lm ||
        tk_die "compiling bench/loadgen.c failed"
    mv "$LOADGEN.tmp" "$LOADGEN"
fi

# ------------------------------------------------------------------ baseline

# bench/baseline (issue 11): its npm packages, exactly as locked, in
# .cache/baseline-node; reinstalled when package.json or the lockfile change.
BASELINE_SRC="$TK_ROOT/bench/baseline"
BASELINE_NODE="$TK_ROOT/.cache/baseline-node"
baseline_install() {
    local stamp="$BASELINE_NODE/stamp" want
    want=$(stk_fingerprint "$BASELINE_SRC/package.json" "$BASELINE_SRC/package-lock.json" <(node --version))
    [[ -d $BASELINE_NODE/node_modules && -f $stamp && $(<"$stamp") == "$want" ]] && return 0
    tk_info "installing the baseline's npm packages (npm ci, bench/baseline/package-lock.json) ..."
    rm -rf "$BASELINE_NODE"
    mkdir -p "$BASELINE_NODE"
    cp "$BASELINE_SRC/package.json" "$BASELINE_SRC/package-lock.json" "$BASELINE_NODE/"
    if ! (cd "$BASELINE_NODE" && npm ci --omit=dev --no-audit --no-fund --cache "$TK_ROOT/.cache/npm") \
        >"$TK_ROOT/.cache/baseline-npm.log" 2>&1; then
        tail -n 20 "$TK_ROOT/.cache/baseline-npm.log" >&2
        rm -rf "$BASELINE_NODE"
        return 1
    fi
    echo "$want" >"$stamp"
}
if want baseline; then
    # Node.js on demand, like perf (Debian 12: nodejs 18), not by ./dev deps.
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || (tk_apt_install nodejs npm) ||
        tk_die "the baseline (bench/baseline) needs Node.js >= 18 and npm (apt-get install nodejs npm)"
    (($(node -p 'process.versions.node.split(".")[0]') >= 18)) ||
        tk_die "the baseline needs Node.js >= 18; this is $(node --version)"
    stk_with_cache_lock baseline_install ||
        tk_die "npm ci for the baseline failed (bench/baseline; log: .cache/baseline-npm.log)"
fi

# ---------------------------------------------------------------------- stack

RUN="" LOADGEN_PID="" PERF_PIDS=() KAFKA_PORT="" MONGO_PORT="" GW_PORT="" SPECS="" BASELINE=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $LOADGEN_PID ]]; then kill -TERM "$LOADGEN_PID" 2>/dev/null || true; fi
    local pid
    for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    if [[ -n $RUN && -d $RUN ]]; then
        local name
        for name in $(worker_names); do
            if pid=$(stk_alive "$RUN" "$name"); then kill -CONT "$pid" 2>/dev/null || true; fi
        done
        stk_stop "$RUN" gateway 20
        stk_stop "$RUN" baseline 20
        stk_stop "$RUN" delayproxy 5
        for name in $(worker_names); do stk_stop "$RUN" "$name" 20; done
        stk_stop_database "$RUN"
        stk_stop_kafka "$RUN"
        if ((rc == 0 && !KEEP)); then
            rm -rf "$RUN"
        else
            tk_info "bench run directory (logs) kept in $RUN"
        fi
    fi
    exit "$rc"
}

worker_names() {
    svc_workers "$RUN"
}

pid_of() { stk_alive "$RUN" "$1" || tk_die "$1 is not running; see $RUN/$1.log"; }

# The database's processes, comma-separated: FerretDB and, with the
# PostgreSQL backend, every PostgreSQL process. Its backends each run in a
# session of their own (no process group holds them): the postmaster is
# named with a +, which makes loadgen count its children too, found again
# at the end of each run (FerretDB opens connections as load grows).
db_pids() {
    local pids pg
    pids=$(pid_of ferretdb)
    if pg=$(stk_alive "$RUN" postgres); then
        pids+=",+$pg"
    fi
    echo "$pids"
}

worker_pids() {
    local name pids=()
    for name in $(worker_names); do pids+=("$(pid_of "$name")"); done
    local IFS=,
    echo "${pids[*]}"
}

# Starts workers 1..N (dynamic group membership: a stopped worker leaves the
# group at once) and waits until each holds partitions.
start_workers() {
    local n=$1 i name
    for ((i = 1; i <= n; i++)); do
        name="worker-$i"
        : >"$RUN/$name.log"
        stk_spawn "$RUN" "$name" env KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT" \
            MONGODB_URI="mongodb://127.0.0.1:${WORKER_MONGO_PORT:-$MONGO_PORT}/$DB_NAME" \
            WORKER_THREADS="$WORKER_THREADS" WORKER_BATCH_MAX="${WORKER_BATCH_MAX:-256}" \
            BIND_ADDRESS=127.0.0.1 COMMAND_KEYS_FILE="$RUN/command_keys" LOG_LEVEL=info "$WORKER_BIN" || exit 1
    done
    for ((i = 1; i <= n; i++)); do
        svc_wait_worker "$RUN" "worker-$i" 90 || exit 1
    done
    sleep 1 # let a rebalance among several workers settle
}

stop_workers() {
    local name
    for name in $(worker_names); do stk_stop "$RUN" "$name" 20; done
}

start_gateway() {
    local timeout_ms=${1:-5000}
    GW_PORT=$(stk_free_port)
    svc_spawn_gateway "$RUN" "$GATEWAY_BIN" "$GW_PORT" "127.0.0.1:$KAFKA_PORT" ACCESS_LOG=off LOG_LEVEL=warn \
        REQUEST_TIMEOUT_MS="$timeout_ms" RATE_LIMIT_PER_SECOND=0 MAX_CONNECTIONS_PER_IP=0 || exit 1
    svc_wait_http "$RUN" gateway "http://127.0.0.1:$GW_PORT/readyz" 200 || exit 1
}

# The baseline server on a free port, its own database on our FerretDB.
# Ready once it answers a request without a token with 401 (it listens only
# after Mongoose has connected).
start_baseline() {
    GW_PORT=$(stk_free_port)
    DB_NAME=ticketing_baseline
    stk_spawn "$RUN" baseline env PORT="$GW_PORT" NODE_ENV=production NODE_PATH="$BASELINE_NODE/node_modules" \
        MONGODB_URI="mongodb://127.0.0.1:$MONGO_PORT/$DB_NAME" JWT_SECRET="$(<"$RUN/jwt_secret")" \
        node "$BASELINE_SRC/server.js" || tk_die "the baseline (node bench/baseline/server.js) did not start"
    svc_wait_http "$RUN" baseline "http://127.0.0.1:$GW_PORT$API/get-tickets" 401 ||
        tk_die "the baseline (node bench/baseline/server.js) did not start"
    tk_info "baseline ready on :$GW_PORT (node $(node --version), database $DB_NAME)"
}

token() { tk_python "$TK_ROOT/scripts/dev_token.py" "$RUN/jwt_secret" "$@"; }

db_count() { tk_python "$TK_ROOT/bench/dbcount.py" "$MONGO_PORT" "$DB_NAME" tickets; }

# ------------------------------------------------------------------- requests

CREATE_BODY='{"category":"Support","subject":"Account Issue","description":"I am facing an issue with my account.","priority":"low"}'
REPLY_BODY='{"description":"I want to add more details about my issue."}'
API=/api/ticket

# Spec lines: WEIGHT METHOD PATH TOKEN BODY (tab-separated), see loadgen.c.
spec_line() { printf '%s\t%s\t%s\t%s\t%s\n' "$@"; }

write_specs() { # [DIR]
    local s=${1:-$RUN/specs}
    mkdir -p "$s"
    spec_line 1 GET /healthz - - >"$s/healthz.tsv"
    spec_line 1 POST "$API/create-ticket" "$TOK_CREATE" "$CREATE_BODY" >"$s/create.tsv"
    spec_line 1 POST "$API/create-ticket" "$TOK_LIST" "$CREATE_BODY" >"$s/seed-list.tsv"
    spec_line 1 POST "$API/create-ticket" "$TOK_OTHER" "$CREATE_BODY" >"$s/seed-other.tsv"
    spec_line 1 POST "$API/create-ticket" "$TOK_REPLY" "$CREATE_BODY" >"$s/seed-reply.tsv"
    spec_line 1 GET "$API/get-tickets" "$TOK_LIST" - >"$s/list.tsv"
    spec_line 1 GET "$API/admin-get-tickets" "$TOK_ADMIN" - >"$s/admin.tsv"
}

# Reply and mix specs need the ids of the seeded reply set.
write_reply_specs() { # [DIR IDS]
    local s=${1:-$RUN/specs} ids=${2:-$RUN/reply-ids} id n
    n=$(wc -l <"$ids")
    ((n > 0)) || tk_die "seeding the reply set created no tickets"
    : >"$s/reply.tsv"
    {
        spec_line 80 GET "$API/get-tickets" "$TOK_LIST" -
        spec_line 10 POST "$API/create-ticket" "$TOK_MIX" "$CREATE_BODY"
    } >"$s/mix.tsv"
    while read -r id; do
        spec_line 1 POST "$API/create-reply?id=$id" "$TOK_REPLY" "$REPLY_BODY" >>"$s/reply.tsv"
        spec_line "$(awk -v n="$n" 'BEGIN { printf "%.6f", 10 / n }')" POST "$API/create-reply?id=$id" \
            "$TOK_REPLY" "$REPLY_BODY" >>"$s/mix.tsv"
    done <"$ids"
}

# ------------------------------------------------------------------- running

# Waits until the workers and the database are idle: requests that timed out
# (504) in the previous run may still be queued in Kafka, and their work
# must not be billed to the next run.
settle() {
    local pids hz before after quiet=0 waited=0
    pids="$(worker_pids),$(db_pids)"
    hz=$(getconf CLK_TCK)
    while ((quiet < 2 && waited < 400)); do
        before=$(proc_ticks "$pids")
        sleep 0.3
        after=$(proc_ticks "$pids")
        # under 60 ms of CPU per second: idle
        if (((after - before) * 10000 / (hz * 3) < 60)); then quiet=$((quiet + 1)); else quiet=0; fi
        waited=$((waited + 1))
    done
    ((waited <= 5)) || tk_info "waited $((waited * 3 / 10))s for the workers and the database to finish the previous run's backlog"
}

# run_load NAME LOADGEN-ARGS...: one loadgen run; its JSON result goes to
# $RUN/results/NAME.json, with "tickets", the ticket count before the run.
run_load() {
    local name=$1 tickets rc=0
    shift
    settle
    tickets=$(db_count)
    local cpu
    if ((BASELINE)); then
        cpu=(--cpu "baseline=$(pid_of baseline)")
    else
        cpu=(--cpu "gateway=$(pid_of gateway)" --cpu "worker=$(worker_pids)" --cpu "broker=$(pid_of kafka)")
    fi
    "$LOADGEN" --port "$GW_PORT" --label "$name" "${cpu[@]}" --cpu "db=$(db_pids)" "$@" \
        >"$RUN/results/$name.out" 2>>"$RUN/loadgen.log" &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_PID=""
    ((rc == 0)) || { tail -n 5 "$RUN/loadgen.log" >&2; tk_die "loadgen failed for $name (exit $rc)"; }
    { grep '^{' "$RUN/results/$name.out" | sed "s/}\$/,\"tickets\":$tickets}/"; } >"$RUN/results/$name.json" ||
        tk_die "loadgen printed no result for $name"
    tail -n 1 "$RUN/loadgen.log" | sed 's/^loadgen: /bench: /' >&2
}

# seed SPEC COUNT [IDS_FILE]: creates COUNT tickets (closed loop, 8 connections).
seed() {
    local spec=$1 count=$2 ids=${3:-/dev/null} rc=0
    "$LOADGEN" --port "$GW_PORT" --label "seed-$spec" --spec "$SPECS/$spec.tsv" --connections 8 \
        --requests "$count" --ids-out "$ids" >"$RUN/results/seed-$spec.out" 2>>"$RUN/loadgen.log" &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_PID=""
    ((rc == 0)) || tk_die "seeding $spec failed; see $RUN/loadgen.log"
    local ok
    ok=$(grep -o '"ok":[0-9]*' "$RUN/results/seed-$spec.out" | cut -d: -f2)
    [[ $ok == "$count" ]] || tk_die "seeding $spec: $ok of $count created; see $RUN/loadgen.log"
}

# The broker is a JVM: for its first minutes under load its JIT compiles
# the produce and fetch paths (C2 threads: 22 s of CPU in a broker's first
# 2.5 minutes, under 0.01 s a second after that), which a broker in service
# has long done. WARM_UP seconds of team-list reads, not measured, warm every
# path (produce, fetch, purgatory) without adding data; the baseline gets
# the same.
warm_up() {
    [[ $WARM_UP != 0 ]] || return 0
    tk_info "warming up: ${WARM_UP}s of team-list reads, not measured ..."
    "$LOADGEN" --port "$GW_PORT" --label warm-up --spec "$SPECS/list.tsv" --connections "$DB_CONNS" \
        --duration "$WARM_UP" >/dev/null 2>>"$RUN/loadgen.log" || tk_die "the warm-up failed; see $RUN/loadgen.log"
}

closed() { # closed NAME SPEC CONNECTIONS DURATION [extra]
    local name=$1 spec=$2 conns=$3 duration=$4
    shift 4
    run_load "$name" --spec "$SPECS/$spec.tsv" --connections "$conns" --duration "$duration" \
        --warmup "$WARMUP" "$@"
}

open_loop() { # open_loop NAME SPEC RATE DURATION
    run_load "$1" --spec "$RUN/specs/$2.tsv" --connections "$OPEN_CONNS" --rate "$3" --duration "$4" \
        --warmup "$WARMUP"
}

# ------------------------------------------------------------------- tables

# The report is bench/report.py (markdown from the runs' JSON results).
report() {
    local baseline_info
    baseline_info="node $(node --version 2>/dev/null || echo '?'), $(node -p "Object.entries(require('$BASELINE_SRC/package.json').dependencies).map(([k, v]) => k + ' ' + v).join(', ')" 2>/dev/null || echo '?')"
    tk_python "$TK_ROOT/bench/report.py" "$RUN/results" --set "root=$TK_ROOT" \
        --set "mode=$( ((QUICK)) && echo quick || echo full)" --set "duration=$DURATION" --set "warmup=$WARMUP" \
        --set "warm_up=$WARM_UP" \
        --set "load_before=$LOAD_BEFORE" --set "java_before=$JAVA_BEFORE" --set "backend=$STK_FERRETDB_BACKEND" \
        --set "workers=$WORKERS" --set "worker_threads=$WORKER_THREADS" --set "seed_list=$SEED_LIST" \
        --set "seed_reply=$SEED_REPLY" --set "idle_seconds=$IDLE_SECONDS" --set "idle_text=$IDLE_TEXT" \
        --set "conns=$CONNS" --set "scale_duration=$SCALE_DURATION" --set "steps=$STEPS" \
        --set "baseline_info=$baseline_info"
}

# result NAME KEY: one value of a run's JSON result.
result() {
    tk_python -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$RUN/results/$1.json" "$2"
}

# ----------------------------------------------------------------- profile

# Profiles gateway and worker (perf, cpu-clock samples with call graphs)
# while create-ticket runs; summaries in .cache/bench/profile-*.txt.
profile_step() {
    # Only --profile needs perf: installed on demand, not by ./dev deps.
    command -v perf >/dev/null 2>&1 || (tk_apt_install linux-perf) ||
        { tk_warn "perf is not available (apt-get install linux-perf): profile skipped"; return 0; }
    if ! perf record -q -e cpu-clock -o /dev/null true >/dev/null 2>&1; then
        tk_warn "perf cannot sample here (kernel.perf_event_paranoid, container?): profile skipped"
        return 0
    fi
    local gw wk dir="$RUN/profile"
    mkdir -p "$dir"
    gw=$(pid_of gateway)
    wk=$(worker_pids)
    tk_info "profiling gateway ($gw) and worker ($wk) for ${PROFILE_SECONDS}s under create-ticket load ..."
    perf record -q -e cpu-clock -F "$PROFILE_HZ" --call-graph dwarf,16384 -p "$gw" -o "$dir/gateway.data" \
        >"$dir/perf-gateway.log" 2>&1 &
    PERF_PIDS+=($!)
    perf record -q -e cpu-clock -F "$PROFILE_HZ" --call-graph dwarf,16384 -p "$wk" -o "$dir/worker.data" \
        >"$dir/perf-worker.log" 2>&1 &
    PERF_PIDS+=($!)
    sleep 1
    closed profile create "$CONNS" "$PROFILE_SECONDS"
    local pid
    for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PERF_PIDS=()
    local what
    for what in gateway worker; do
        (
            set +o pipefail # head closes the pipe early
            local bin="$RUN/bin/ticket-$what" data="$dir/$what.data"
            echo "# perf profile of ticket-$what under create-ticket load ($(date -u '+%Y-%m-%d %H:%M UTC'))"
            echo "# cpu-clock samples at ${PROFILE_HZ} Hz for ${PROFILE_SECONDS}s, DWARF call graphs; shares of all samples of the process"
            perf report -i "$data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -m1 '^# Samples' || true
            echo
            echo "## self time, top 15 symbols (all code)"
            perf report -i "$data" --no-children --sort dso,symbol --stdio -q -g none 2>/dev/null |
                grep -v '^$' | sed 's/[ -]*$//' | head -n 15
            echo
            echo "## inclusive time (children) of functions of ticket-$what, top 25"
            perf report -i "$data" --children --no-inline --sort symbol --stdio -q -g none 2>/dev/null |
                awk 'NR == FNR { ours[$1] = 1; next }
                     match($0, /\] [^ ]+/) { sym = substr($0, RSTART + 2, RLENGTH - 2)
                                              if (sym in ours) printf "%8s %8s  %s\n", $1, $2, sym }' \
                    <(nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }') - | head -n 25
            echo
            echo "## self time by shared object"
            perf report -i "$data" --no-children --sort dso --stdio -q -g none 2>/dev/null |
                grep -v '^$' | sed 's/[ -]*$//' | head -n 12
        ) >"$OUT_DIR/profile-$what.txt"
    done
    tk_info "profiles: .cache/bench/profile-gateway.txt, .cache/bench/profile-worker.txt"
}

# CPU of each component while nothing is sent, in ms per second.
IDLE_TEXT=""
measure_idle() {
    local names=(gateway worker broker db) pids=("$(pid_of gateway)" "$(worker_pids)" "$(pid_of kafka)" \
        "$(db_pids)") before=() i seconds=$IDLE_SECONDS hz
    hz=$(getconf CLK_TCK)
    settle
    sleep 2 # the broker keeps working a little after the last request
    for i in 0 1 2 3; do before[i]=$(proc_ticks "${pids[i]}"); done
    sleep "$seconds"
    IDLE_TEXT=""
    for i in 0 1 2 3; do
        IDLE_TEXT+="${IDLE_TEXT:+, }${names[i]} $(awk -v a="${before[i]}" -v b="$(proc_ticks "${pids[i]}")" \
            -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.0f", (b - a) * 1000 / hz / s }')"
    done
}

# utime+stime (clock ticks) of the comma-separated PIDS, summed.
proc_ticks() {
    local pid total=0 t
    for pid in ${1//,/ }; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

# --------------------------------------------------------------------- main

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
JAVA_BEFORE=$(pgrep -c java || true)
T0=$(tk_now_ms)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/ticket-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$RUN/results" "$RUN/bin"
SPECS="$RUN/specs"
# Our own copies: a rebuild of build/ during the run (other sessions) must
# neither change what is measured nor hide the symbols from the profiler.
cp "$GATEWAY_BIN" "$WORKER_BIN" "$RUN/bin/"
GATEWAY_BIN="$RUN/bin/ticket-gateway"
WORKER_BIN="$RUN/bin/ticket-worker"
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$RUN/jwt_secret")
rm -f "$RUN/command_keys" && tk_ensure_command_keys "$RUN/command_keys"

tk_info "starting the bench stack in $RUN ..."
stk_start_kafka_free "$RUN" || exit 1
KAFKA_PORT=$STK_KAFKA_PORT
stk_create_topics "$RUN" "$KAFKA_PORT" || exit 1
stk_start_ferretdb_free "$RUN" || exit 1
MONGO_PORT=$STK_MONGO_PORT
start_workers "$WORKERS"
start_gateway 5000
tk_info "stack ready in $(tk_since "$T0"): Kafka :$KAFKA_PORT, FerretDB :$MONGO_PORT ($STK_FERRETDB_BACKEND), $WORKERS worker(s), gateway :$GW_PORT"

# --tickets N: the database gets its size before anything is measured.
if ((PRELOAD > 0)); then
    tk_info "preloading $PRELOAD tickets in 500 teams (bench/preload.py) ..."
    "$TK_ROOT/.cache/venv/bin/python" "$TK_ROOT/bench/preload.py" \
        "mongodb://127.0.0.1:$MONGO_PORT/$DB_NAME" "$PRELOAD" 500 >&2 || tk_die "preloading failed"
    if [[ $STK_FERRETDB_BACKEND != sqlite ]]; then
        # Planner statistics now, not whenever autovacuum gets to the table.
        stk_psql "$RUN" -c "ANALYZE" || tk_die "ANALYZE failed"
    fi
fi

TOK_CREATE=$(token customer 671fa1c8f1c2b3a5e4d90001 bench-create)
TOK_LIST=$(token customer 671fa1c8f1c2b3a5e4d90002 bench-list)
TOK_OTHER=$(token customer 671fa1c8f1c2b3a5e4d90003 bench-other)
TOK_REPLY=$(token customer 671fa1c8f1c2b3a5e4d90004 bench-reply)
TOK_MIX=$(token customer 671fa1c8f1c2b3a5e4d90005 bench-mix)
TOK_ADMIN=$(token admin 671fb1d8f1c2b3a5e4d90050)
write_specs

# A few requests through the whole pipeline before anything is measured,
# then the CPU the stack burns with no load at all (a baseline for the tables).
# Only dbprobe (e.g. --tickets N --only dbprobe): the preloaded data alone.
NEEDS_LOAD=1
[[ $STEPS == dbprobe ]] && NEEDS_LOAD=0
if ((NEEDS_LOAD)); then
    seed create 200
    measure_idle
fi

want healthz && closed healthz healthz "$CONNS" "$DURATION"

# The list team and a second team: the admin list sees both (a moderate size).
((NEEDS_LOAD)) && seed seed-list "$SEED_LIST"
((NEEDS_LOAD)) && seed seed-other "$SEED_OTHER"
((NEEDS_LOAD)) && warm_up
want admin && closed admin admin "$DB_CONNS" "$DURATION"
want list && closed list list "$DB_CONNS" "$DURATION"

# Reads and replies before the create runs: FerretDB scans the whole
# collection for them, so they are measured while it is small.
if ((NEEDS_LOAD)); then
    seed seed-reply "$SEED_REPLY" "$RUN/reply-ids"
    write_reply_specs
fi
want latency && closed latency-reply reply 1 "$LAT_DURATION"
want reply && closed reply reply "$DB_CONNS" "$DURATION"
want mix && closed mix mix "$DB_CONNS" "$DURATION"
want reply-trips && reply_trips_step
want latency && closed latency-create create 1 "$LAT_DURATION"
# Reads of one ticket and of a first page (DESIGN.md), once the routes exist.
if want reads; then
    first_id=$(head -n 1 "$RUN/reply-ids")
    if [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK_REPLY" \
            "http://127.0.0.1:$GW_PORT$API/get-ticket?id=$first_id") == 200 ]]; then
        : >"$RUN/specs/get.tsv"
        while read -r id; do
            spec_line 1 GET "$API/get-ticket?id=$id" "$TOK_REPLY" - >>"$RUN/specs/get.tsv"
        done <"$RUN/reply-ids"
        spec_line 1 GET "$API/get-tickets?limit=50" "$TOK_LIST" - >"$RUN/specs/page.tsv"
        closed latency-get get 1 "$LAT_DURATION"
        closed latency-page page 1 "$LAT_DURATION"
    else
        tk_warn "GET $API/get-ticket is not 200 here (route not merged yet?): reads skipped"
    fi
fi
if want create; then
    closed create create "$CONNS" "$DURATION"
    if [[ -z $RATE ]]; then
        RATE=$(awk -v r="$(result create rps)" 'BEGIN { r = int(r / 2 / 10) * 10; print (r < 50 ? 50 : r) }')
    fi
    open_loop create-open create "$RATE" "$DURATION"
fi
want profile && profile_step

if want scaling; then
    for n in 1 2 4; do
        stop_workers
        start_workers "$n"
        tk_info "scaling: $n worker(s)"
        closed "scale-$n" create "$CONNS" "$SCALE_DURATION"
    done
    stop_workers
    start_workers "$WORKERS"
fi
want scaling-latency && scaling_latency_step

if want hold; then
    # A gateway that waits a minute for answers, warmed up, then the workers stop.
    stk_stop "$RUN" gateway 20
    start_gateway 60000
    seed create 500
    tk_info "holding $HOLD waiting requests (workers stopped) ..."
    LOADGEN_PID=""
    "$LOADGEN" --port "$GW_PORT" --label hold --spec "$RUN/specs/create.tsv" --hold "$HOLD" \
        --stop-pids "$(worker_pids)" --rss-pid "$(pid_of gateway)" --drain 120 \
        >"$RUN/results/hold.out" 2>>"$RUN/loadgen.log" &
    LOADGEN_PID=$!
    rc=0
    wait "$LOADGEN_PID" || rc=$?
    LOADGEN_PID=""
    ((rc == 0)) || tk_die "loadgen --hold failed (exit $rc); see $RUN/loadgen.log"
    grep '^{' "$RUN/results/hold.out" >"$RUN/results/hold.json" || tk_die "no result from --hold"
    tail -n 1 "$RUN/loadgen.log" | sed 's/^loadgen: /bench: /' >&2
fi

# The admin list walked page by page over HTTP (Link rel="next").
if want walk; then
    tk_info "walking the admin list page by page ..."
    tk_python "$TK_ROOT/bench/pagewalk.py" "http://127.0.0.1:$GW_PORT" "$API/admin-get-tickets" \
        "$TOK_ADMIN" "$( ((QUICK)) && echo 10 || echo 40)" 50 >"$RUN/results/walk.md" ||
        tk_warn "the page walk failed"
fi

# The database's side of the reads and replies: its queries timed directly.
if want dbprobe; then
    if [[ -x $TK_ROOT/.cache/venv/bin/python ]] && "$TK_ROOT/.cache/venv/bin/python" -c 'import pymongo' 2>/dev/null; then
        tk_info "timing the worker's queries directly against FerretDB ..."
        "$TK_ROOT/.cache/venv/bin/python" "$TK_ROOT/bench/dbprobe.py" \
            "mongodb://127.0.0.1:$MONGO_PORT/$DB_NAME" "$STK_FERRETDB_BACKEND" "$( ((QUICK)) && echo 1 || echo 3)" \
            >"$RUN/results/dbprobe.md" ||
            tk_warn "the database probe failed"
    else
        tk_warn "no pymongo in .cache/venv (./dev deps): database probe skipped"
    fi
fi

# The baseline (issue 11) on the same FerretDB, in a database of its own,
# once our runs are done: the same load generator, tokens and workloads.
# Our gateway, workers and broker stop first (the baseline has none, and
# their idle CPU must not be billed to it).
if want baseline; then
    tk_info "the baseline: Express + Mongoose (bench/baseline) on the same FerretDB ..."
    stk_stop "$RUN" gateway 20
    stop_workers
    stk_stop_kafka "$RUN"
    BASELINE=1
    start_baseline
    SPECS="$RUN/specs-baseline"
    write_specs "$SPECS"
    seed create 200
    seed seed-list "$SEED_LIST"
    seed seed-other "$SEED_OTHER"
    warm_up
    seed seed-reply "$SEED_REPLY" "$RUN/baseline-reply-ids"
    write_reply_specs "$SPECS" "$RUN/baseline-reply-ids"
    closed baseline-mix mix "$DB_CONNS" "$DURATION"
    closed baseline-latency-create create 1 "$LAT_DURATION"
    closed baseline-create create "$CONNS" "$DURATION"
    stk_stop "$RUN" baseline 20
fi

report >"$OUT_DIR/latest.md.tmp"
mv "$OUT_DIR/latest.md.tmp" "$OUT_DIR/latest.md"
cp -r "$RUN/results" "$OUT_DIR/results.tmp" && rm -rf "$OUT_DIR/results" && mv "$OUT_DIR/results.tmp" "$OUT_DIR/results"
echo
cat "$OUT_DIR/latest.md"
tk_info "bench done in $(tk_since "$T0"); tables in .cache/bench/latest.md"

# An error answer means the figures above measured something else than the
# service working (a fast 503 is not throughput): fail, whatever the speed.
if ! tk_python "$TK_ROOT/bench/report.py" "$RUN/results" --errors >"$RUN/errors.txt"; then
    while read -r line; do tk_fail "$line"; done <"$RUN/errors.txt"
    tk_fail "$(wc -l <"$RUN/errors.txt") bench run(s) had error answers (see above and $RUN/loadgen.log)"
    exit 1
fi
