# shellcheck shell=bash
# The scaling-latency step of ./dev bench (sourced by bench/run.sh): worker
# scaling with the database DB_LATENCY_MS away from the workers, through
# bench/delayproxy.c on loopback (it holds every byte for that delay in each
# direction; its CPU is measured as a group of its own). Only the workers go
# through the proxy: the gateway, the broker and the bench's own database
# reads do not. Method and figures: BENCHMARKS.md, "Workers with 2 ms to the
# database".

DELAYPROXY="" # .cache/bench/delayproxy, built by latency_build
DB_LATENCY_MS=${DB_LATENCY_MS:-2}
LAT_THREADS=${LAT_THREADS:-1 2 4 8} # WORKER_THREADS of one worker
LAT_WORKERS=${LAT_WORKERS:-1 2 4}   # workers of WORKER_THREADS=4
LAT_ONE_BY_ONE=${LAT_ONE_BY_ONE:-1 2 4} # workers of one lane each, batching off

latency_build() {
    DELAYPROXY="$OUT_DIR/delayproxy"
    [[ -x $DELAYPROXY && $DELAYPROXY -nt $TK_ROOT/bench/delayproxy.c ]] && return 0
    tk_info "building the delay proxy (bench/delayproxy.c) ..."
    cc -O2 -g -Wall -Wextra -o "$DELAYPROXY.tmp" "$TK_ROOT/bench/delayproxy.c" ||
        tk_die "compiling bench/delayproxy.c failed"
    mv "$DELAYPROXY.tmp" "$DELAYPROXY"
}

# Starts the proxy in front of FerretDB; sets PROXY_PORT.
latency_start_proxy() {
    local deadline=$((SECONDS + 10))
    stk_spawn "$RUN" delayproxy "$DELAYPROXY" "$MONGO_PORT" "$((DB_LATENCY_MS * 1000))" || exit 1
    until PROXY_PORT=$(head -n 1 "$RUN/delayproxy.log" 2>/dev/null) && [[ $PROXY_PORT =~ ^[0-9]+$ ]]; do
        ((SECONDS < deadline)) || tk_die "the delay proxy did not start; see $RUN/delayproxy.log"
        sleep 0.05
    done
}

# One closed-loop create-ticket run with N workers of T threads behind the
# proxy, each applying at most BATCH messages at once (default: the bench's).
# Usage: latency_run N T [BATCH]
latency_run() {
    local workers=$1 threads=$2 batch=${3:-${WORKER_BATCH_MAX:-256}} saved=$WORKER_THREADS
    stop_workers
    WORKER_THREADS=$threads WORKER_BATCH_MAX=$batch WORKER_MONGO_PORT=$PROXY_PORT start_workers "$workers"
    WORKER_THREADS=$saved
    tk_info "scaling with ${DB_LATENCY_MS} ms to the database: $workers worker(s) x $threads thread(s), batches of $batch"
    local name="lat-w$workers-t$threads" trips0 trips1
    [[ -z ${3:-} ]] || name="lat-w$workers-t$threads-b$batch"
    settle
    trips0=$(latency_round_trips)
    closed "$name" create "$CONNS" "$SCALE_DURATION" --cpu "proxy=$(pid_of delayproxy)"
    trips1=$(latency_round_trips)
    # The workers' round trips during warm-up and window (plus their few
    # probes): the report divides the creates of that time by them, i.e. the
    # insertMany batch size reached. (Counting the tickets instead is a full
    # scan on FerretDB, too slow once the collection is large.)
    echo "{\"round_trips\":$((trips1 - trips0)),\"seconds\":$(awk -v a="$WARMUP" -v b="$SCALE_DURATION" \
        'BEGIN { print a + b }')}" >"$RUN/results/$name.trips"
}

# The proxy's count of round trips so far (SIGUSR1: it prints it on its log).
latency_round_trips() {
    local before after deadline=$((SECONDS + 5))
    before=$(grep -c '^round_trips=' "$RUN/delayproxy.log" || true)
    kill -USR1 "$(pid_of delayproxy)"
    until after=$(grep -c '^round_trips=' "$RUN/delayproxy.log" || true) && ((after > before)); do
        ((SECONDS < deadline)) || tk_die "the delay proxy did not report its round trips"
        sleep 0.02
    done
    grep '^round_trips=' "$RUN/delayproxy.log" | tail -n 1 | cut -d= -f2
}

scaling_latency_step() {
    latency_build
    latency_start_proxy
    tk_info "delay proxy :$PROXY_PORT -> FerretDB :$MONGO_PORT, ${DB_LATENCY_MS} ms each way"
    "$TK_ROOT/.cache/venv/bin/python" "$TK_ROOT/bench/dbping.py" "$MONGO_PORT" "$PROXY_PORT" 200 \
        >"$RUN/results/lat-ping.md" || tk_die "timing the round trip through the delay proxy failed"
    local n t
    # The first point must not pay for a cold broker (JIT) and database: in
    # a run of this step alone only 200 creates came before it.
    stop_workers
    WORKER_MONGO_PORT=$PROXY_PORT start_workers 1
    tk_info "warming up with ${DB_LATENCY_MS} ms to the database (not measured) ..."
    closed lat-warmup create "$CONNS" "$SCALE_DURATION"
    for n in $LAT_WORKERS; do latency_run "$n" 4; done
    for t in $LAT_THREADS; do [[ $t == 4 ]] || latency_run 1 "$t"; done
    # Work the database's distance bounds (every message its own round
    # trip, as replies, updates and lists are): what more workers buy when
    # one is not already using the machine's CPU.
    for n in $LAT_ONE_BY_ONE; do latency_run "$n" 1 1; done
    stop_workers
    # shellcheck disable=SC2153 # WORKERS: the --workers option of bench/run.sh
    start_workers "$WORKERS"
    stk_stop "$RUN" delayproxy 5
    tk_python "$TK_ROOT/bench/latency_report.py" "$RUN/results" "$DB_LATENCY_MS" "$RUN/results/lat-ping.md" \
        >"$RUN/results/scaling-latency.md" || tk_warn "the scaling-latency table failed"
}

# The reply step (closed loop, c=DB_CONNS) with the workers behind the proxy
# at REPLY_TRIPS_DELAY_MS (default 0: counting, not delaying): prints and
# writes results/reply-trips.md, the workers' database round trips per
# reply (warm-up and window together, as latency_run; their few probes and
# heartbeats included). Compare WORKER_BATCH_MAX=1 (one by one) with the default.
reply_trips_step() {
    local saved=$DB_LATENCY_MS trips0 trips1 replies
    DB_LATENCY_MS=${REPLY_TRIPS_DELAY_MS:-0}
    latency_build
    latency_start_proxy
    DB_LATENCY_MS=$saved
    stop_workers
    WORKER_MONGO_PORT=$PROXY_PORT start_workers "$WORKERS"
    settle
    trips0=$(latency_round_trips)
    closed reply-trips reply "$DB_CONNS" "$DURATION" --cpu "proxy=$(pid_of delayproxy)"
    trips1=$(latency_round_trips)
    replies=$(awk -v r="$(result reply-trips rps)" -v a="$WARMUP" -v b="$DURATION" 'BEGIN { printf "%d", r * (a + b) }')
    awk -v t="$((trips1 - trips0))" -v n="$replies" -v m="${WORKER_BATCH_MAX:-256}" 'BEGIN {
        printf "reply-trips: WORKER_BATCH_MAX=%s, %d database round trips for about %d replies: %.2f per reply\n",
            m, t, n, (n > 0 ? t / n : 0) }' >"$RUN/results/reply-trips.md"
    tk_info "$(cat "$RUN/results/reply-trips.md")"
    stop_workers
    start_workers "$WORKERS"
    stk_stop "$RUN" delayproxy 5
}
