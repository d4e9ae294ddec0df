# shellcheck shell=bash
# Local infrastructure for ./dev: Apache Kafka (KRaft, single node) and the
# embedded database, FerretDB (patched, tools/ferretdb) on PostgreSQL 15
# (Debian's postgresql-15), fetched/built into .cache/ and run as background
# process groups in a run directory (logs and pid files there).
#
# Sourced by ./dev after scripts/common.sh. Functions are prefixed `stk_`.
# Every start function returns non-zero with a message naming the log file.

STK_CACHE="$TK_ROOT/.cache"
STK_KAFKA_POM="$TK_ROOT/tools/kafka/pom.xml"
STK_KAFKA_TOOL_SRC="$TK_ROOT/tools/kafka/EnsureTopics.java"
STK_KAFKA_LIBS="$STK_CACHE/kafka/libs"
STK_KAFKA_TOOL_JAR="$STK_CACHE/kafka/ensure-topics.jar"
STK_FERRETDB_SRC="$TK_ROOT/tools/ferretdb"
STK_FERRETDB_BIN="$STK_CACHE/bin/ferretdb"
STK_PG_BIN="${TICKET_PG_BIN:-/usr/lib/postgresql/15/bin}"
# Names the socket only (listen_addresses is empty: no TCP port to collide).
STK_PG_PORT=5432
# FERRETDB_BACKEND=sqlite runs the old SQLite backend (for comparisons).
STK_FERRETDB_BACKEND="${FERRETDB_BACKEND:-postgresql}"

# Topics of docs/contract.md: name:partitions:retention_ms.
STK_TOPICS=(
    "ticket.commands:8:604800000"   # 7 days
    "ticket.queries:8:3600000"      # 1 hour
    "ticket.replies:4:3600000"      # 1 hour
    "ticket.events:4:604800000"     # 7 days
    "ticket.dlq:1:2592000000"       # 30 days
)

# Heap and GC of the broker; override with KAFKA_HEAP_OPTS / KAFKA_JVM_OPTS.
STK_KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
# ParallelGC: like SerialGC (with which the broker cost less CPU per request
# than with G1), no concurrent GC threads to compete for two shared cores,
# and about the same CPU per request; its young pauses are half SerialGC's
# and fewer: 7-8 ms against 14-15 ms, 125 ms in all against 470 ms in a 15 s
# run at 1,200 creates a second (BENCHMARKS.md, issue 11, fifth session).
STK_KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseParallelGC -XX:ParallelGCThreads=2 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dlog4j2.shutdownHookEnabled=false}"
# Short-lived helper JVMs (storage format, topic creation): start fast.
STK_TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

# ---------------------------------------------------------------- fetch/build

# Fingerprint of files (content), for cache stamps.
stk_fingerprint() {
    cat "$@" | sha256sum | cut -c1-16
}

# Runs "$@" while holding the cache lock, so parallel ./dev runs do not
# fetch or build into the same place at once.
stk_with_cache_lock() {
    mkdir -p "$STK_CACHE"
    (
        flock 9
        "$@"
    ) 9>"$STK_CACHE/.lock"
}

# Kafka jars into .cache/kafka/libs (mvn dependency:copy-dependencies).
# Skipped while tools/kafka/pom.xml is unchanged.
stk_fetch_kafka() {
    local stamp="$STK_CACHE/kafka/libs.stamp" want
    want=$(stk_fingerprint "$STK_KAFKA_POM")
    if [[ -d $STK_KAFKA_LIBS && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    tk_need mvn "install maven (apt-get install maven)"
    tk_info "fetching Apache Kafka jars from Maven Central (tools/kafka/pom.xml) ..."
    local tmp="$STK_CACHE/kafka/libs.tmp" log="$STK_CACHE/kafka/fetch.log"
    mkdir -p "$STK_CACHE/kafka"
    rm -rf "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$STK_KAFKA_POM" \
            -Dmaven.repo.local="$STK_CACHE/m2" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" >"$log" 2>&1; then
        tk_fail "fetching Kafka with Maven failed; see $log"
        return 1
    fi
    rm -rf "$STK_KAFKA_LIBS"
    mv "$tmp" "$STK_KAFKA_LIBS"
    rm -f "$STK_CACHE"/kafka/*.jsa
    echo "$want" >"$stamp"
}

# The topic helper (tools/kafka/EnsureTopics.java) compiled against the jars
# into a jar (class-data sharing accepts jars only on the class path).
stk_build_kafka_tool() {
    local stamp="$STK_KAFKA_TOOL_JAR.stamp" want
    want=$(stk_fingerprint "$STK_KAFKA_TOOL_SRC" "$STK_CACHE/kafka/libs.stamp")
    if [[ -f $STK_KAFKA_TOOL_JAR && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    tk_need javac "install a JDK (apt-get install openjdk-17-jdk-headless)"
    tk_info "compiling tools/kafka/EnsureTopics.java ..."
    local classes="$STK_CACHE/kafka/classes"
    rm -rf "$classes"
    mkdir -p "$classes"
    javac -nowarn -d "$classes" -cp "$STK_KAFKA_LIBS/*" "$STK_KAFKA_TOOL_SRC" ||
        { tk_fail "javac failed on $STK_KAFKA_TOOL_SRC"; return 1; }
    jar --create --file "$STK_KAFKA_TOOL_JAR.tmp" -C "$classes" . ||
        { tk_fail "jar failed for $STK_KAFKA_TOOL_JAR"; return 1; }
    mv "$STK_KAFKA_TOOL_JAR.tmp" "$STK_KAFKA_TOOL_JAR"
    rm -f "$STK_CACHE"/kafka/topics-*.jsa
    echo "$want" >"$stamp"
}

# FerretDB (tools/ferretdb, Go module) built into .cache/bin/ferretdb, with
# the PostgreSQL backend and tools/ferretdb/patches/*.patch applied to a copy
# of the upstream module (.cache/ferretdb/src). tools/ferretdb/go.mod stays
# upstream; the build uses a copy of it with a replace (go build -modfile).
stk_build_ferretdb() {
    local stamp="$STK_FERRETDB_BIN.stamp" want
    want=$(stk_fingerprint "$STK_FERRETDB_SRC"/go.mod "$STK_FERRETDB_SRC"/go.sum "$STK_FERRETDB_SRC"/*.go \
        "$STK_FERRETDB_SRC"/patches/*.patch)
    if [[ -x $STK_FERRETDB_BIN && -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    tk_need go "install Go >= 1.24 (it is expected at /usr/local/go/bin)"
    tk_info "building FerretDB (tools/ferretdb, patched) with go build; the first build takes about a minute ..."
    local log="$STK_CACHE/ferretdb-build.log" work="$STK_CACHE/ferretdb"
    mkdir -p "$STK_CACHE/bin" "$work"
    : >"$log"
    if ! (
        set -e
        cd "$STK_FERRETDB_SRC"
        export GOMODCACHE="$STK_CACHE/go/mod" GOCACHE="$STK_CACHE/go/build" \
            GOFLAGS="-modcacherw -mod=readonly -buildvcs=false" CGO_ENABLED=0
        local version upstream patch
        version=$(go list -m -f '{{.Version}}' github.com/FerretDB/FerretDB)
        upstream=$(go mod download -json "github.com/FerretDB/FerretDB@$version" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
        [[ -d $upstream ]] || { echo "no module directory for FerretDB $version"; exit 1; }
        rm -rf "$work/src"
        cp -R "$upstream" "$work/src"
        chmod -R u+w "$work/src"
        for patch in patches/*.patch; do
            echo "applying $patch"
            patch -d "$work/src" -p1 --batch --forward --quiet <"$patch"
        done
        cp go.mod "$work/build.mod"
        cp go.sum "$work/build.sum"
        go mod edit -modfile="$work/build.mod" -replace "github.com/FerretDB/FerretDB=$work/src"
        go build -modfile="$work/build.mod" -trimpath -o "$STK_FERRETDB_BIN.tmp" .
    ) >>"$log" 2>&1; then
        tk_fail "building FerretDB failed; see $log"
        return 1
    fi
    mv "$STK_FERRETDB_BIN.tmp" "$STK_FERRETDB_BIN"
    echo "$want" >"$stamp"
}

# Everything the stack needs, fetched/built once into .cache/.
stk_prepare() {
    stk_with_cache_lock stk__prepare_locked
}
stk__prepare_locked() {
    stk_fetch_kafka
    stk_build_kafka_tool
    stk_build_ferretdb
}

# ------------------------------------------------------------------ processes

# Prints a free TCP port on 127.0.0.1 (the kernel's choice).
stk_free_port() {
    tk_python -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
stk_port_open() {
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Starts "$@" in its own session/process group, in the background, with
# stdout+stderr appended to RUN/NAME.log and its pid in RUN/NAME.pid.
# The process gets TICKET_RUN_DIR=RUN so that stk_alive can tell it is ours.
# Usage: stk_spawn RUN NAME CMD...
stk_spawn() {
    local run=$1 name=$2
    shift 2
    local pidfile="$run/$name.pid" log="$run/$name.log"
    rm -f "$pidfile"
    # A background command starts with SIGINT/SIGQUIT ignored; the service
    # gets them back (env --default-signal) so it stops on them as usual.
    # shellcheck disable=SC2016 # $$ and $0 belong to the inner bash
    TICKET_RUN_DIR="$run" setsid env --default-signal=INT,QUIT \
        bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $pidfile ]] && return 0
        sleep 0.02
    done
    tk_fail "$name did not start; see $log"
    return 1
}

# Prints the pid of RUN/NAME if that process is alive and was started by
# stk_spawn for this run dir; returns 1 otherwise.
stk_alive() {
    local run=$1 name=$2 pid
    [[ -f $run/$name.pid ]] || return 1
    pid=$(<"$run/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A recycled pid would not carry our run dir in its environment. While
    # the process execs, its environ reads empty for a moment: read again
    # (taking that for an exit failed a start-up on a busy machine).
    local env i
    for ((i = 0; i < 20; i++)); do
        env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null) || true
        [[ -z $env ]] || break
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    grep -qxF "TICKET_RUN_DIR=$run" <<<"$env" || return 1
    echo "$pid"
}

# Stops RUN/NAME: SIGTERM to its process group, SIGKILL after TIMEOUT
# seconds (default 15). Quiet and successful when it is not running.
stk_stop() {
    local run=$1 name=$2 timeout=${3:-15} pid i
    if ! pid=$(stk_alive "$run" "$name"); then
        rm -f "$run/$name.pid"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        tk_warn "$name (pid $pid) did not stop within ${timeout}s after SIGTERM; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$run/$name.pid"
}

# Runs CMD... every 0.1 s until it succeeds while RUN/NAME stays alive, for
# TIMEOUT seconds at most (WHAT: the awaited state, for the message). The
# one readiness wait of every process of a stack.
# Usage: stk_wait_for RUN NAME TIMEOUT WHAT CMD...
stk_wait_for() {
    local run=$1 name=$2 timeout=$3 what=$4 deadline=$((SECONDS + $3))
    shift 4
    until "$@"; do
        if ! stk_alive "$run" "$name" >/dev/null; then
            tk_fail "$name exited during startup; see $run/$name.log"
            tail -n 20 "$run/$name.log" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            tk_fail "$name: $what, not within ${timeout}s; see $run/$name.log"
            return 1
        fi
        sleep 0.1
    done
}

# Waits until PORT accepts connections. Usage: stk_wait_port RUN NAME PORT TIMEOUT_SECONDS
stk_wait_port() {
    stk_wait_for "$1" "$2" "$4" "port $3 open" stk_port_open "$3"
}

# Names of the numbered processes PREFIX-1, PREFIX-2 ... of RUN, by the files
# RUN/PREFIX-I.SUFFIX, one a line in number order. Usage: stk_numbered RUN PREFIX SUFFIX
stk_numbered() {
    local f
    for f in "$1/$2"-[0-9]*."$3"; do
        [[ -e $f ]] || continue
        f=${f##*/}
        echo "${f%."$3"}"
    done | sort -t- -k2 -n
}

# ---------------------------------------------------------------------- Kafka

# JVM class-data-sharing archive per JVM kind ("broker", "format", "topics"): created by
# the first run (at its exit), reused afterwards; it cuts JVM startup by ~1s.
# Prints the -XX option to use. Usage: stk_cds_opt KIND RUN
stk_cds_opt() {
    local kind=$1 run=$2 archive
    archive="$STK_CACHE/kafka/$kind-$(<"$STK_CACHE/kafka/libs.stamp").jsa"
    if [[ -s $archive ]]; then
        echo "-XX:SharedArchiveFile=$archive"
    else
        echo "-XX:ArchiveClassesAtExit=$run/$kind.jsa"
    fi
}

# Moves an archive written by a JVM that has exited into the cache.
stk_cds_keep() {
    local kind=$1 run=$2 archive
    archive="$STK_CACHE/kafka/$kind-$(<"$STK_CACHE/kafka/libs.stamp").jsa"
    if [[ -s $run/$kind.jsa && ! -e $archive ]]; then
        mv "$run/$kind.jsa" "$archive" 2>/dev/null || true
    fi
    rm -f "$run/$kind.jsa"
}

# Runs a short-lived Kafka JVM (main class and args in "$@").
# Usage: stk_kafka_tool KIND RUN MAIN_CLASS ARGS...
stk_kafka_tool() {
    local kind=$1 run=$2 rc=0
    shift 2
    java "${STK_TOOL_JVM_OPTS[@]}" "$(stk_cds_opt "$kind" "$run")" -Xlog:cds=off -Xlog:cds+dynamic=off \
        -Dlog4j2.configurationFile="$run/kafka/log4j2-tools.properties" \
        -cp "$STK_KAFKA_TOOL_JAR:$STK_KAFKA_LIBS/*" "$@" || rc=$?
    stk_cds_keep "$kind" "$run"
    return $rc
}

# Writes RUN/kafka/{server.properties,log4j2*.properties}.
stk_kafka_config() {
    local run=$1 port=$2 cport=$3
    stk_kafka_node_config "$run" kafka 1 "$port" "$cport" "1@127.0.0.1:$cport" 1
}

# Writes RUN/NAME/{server.properties,log4j2.properties} for node NODE_ID of a
# KRaft quorum (VOTERS: id@host:port,...) whose topics have REPLICAS copies,
# and the tools' log configuration RUN/kafka/log4j2-tools.properties.
# Usage: stk_kafka_node_config RUN NAME NODE_ID PORT CONTROLLER_PORT VOTERS REPLICAS
stk_kafka_node_config() {
    local run=$1 name=$2 node_id=$3 port=$4 cport=$5 voters=$6 replicas=$7 dir="$1/$2"
    local min_isr=1 what="single-node KRaft broker+controller" failover=""
    if ((replicas > 1)); then
        min_isr=$((replicas - 1))
        what="KRaft broker+controller node $node_id of a $replicas-node cluster"
        # Failover well within a request timeout (5 s) instead of 10-30 s:
        # a node that stops heartbeating is fenced (its partitions get new
        # leaders and it leaves every ISR) after 1.2 s; a dead active
        # controller is replaced after 1.25-1.5 s, and the new one fences
        # the dead node 1.2 s later (3-4 s of stall when the killed node was
        # both; with a 1.5 s session fault 8 saw in-flight requests pass 5 s). An in-sync follower that falls behind
        # (a restarted node still warming up on a busy machine) holds every
        # acks=all write of its partitions until it leaves the ISR: 3 s,
        # not 30 s (with 10 s, fault 8 saw 504s when the victim rejoined).
        # Measured by tests/faults/test_8_*. Three JVMs share two cores:
        # fewer threads each.
        failover="broker.heartbeat.interval.ms=200
broker.session.timeout.ms=1200
controller.quorum.fetch.timeout.ms=1000
controller.quorum.election.timeout.ms=250
controller.quorum.election.backoff.max.ms=250
replica.lag.time.max.ms=3000
num.replica.fetchers=1
background.threads=2
"
    fi
    mkdir -p "$dir/data" "$run/kafka"
    cat >"$dir/server.properties" <<EOF
# Written by scripts/stack.sh: $what for dev/tests.
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
num.network.threads=2
num.io.threads=4
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
${failover}EOF
    cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
# "Auto topic creation failed ... already exists" while a client looks for
# the group coordinator during startup: harmless and noisy.
logger.autotopic.name = org.apache.kafka.server.DefaultAutoTopicCreationManager
logger.autotopic.level = ERROR
EOF
    cat >"$run/kafka/log4j2-tools.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m (%c)%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = ERR
EOF
}

# Starts the broker; returns once its port accepts connections. With
# SASL_SSL_PORT, also a SASL_SSL listener there (stk_kafka_tls made its files).
# Usage: stk_start_kafka RUN PORT CONTROLLER_PORT [SASL_SSL_PORT]
stk_start_kafka() {
    local run=$1 port=$2 cport=$3 sport=${4:-} scram=()
    stk_kafka_config "$run" "$port" "$cport"
    if [[ -n $sport ]]; then
        stk_kafka_sasl_ssl_config "$run" "$port" "$cport" "$sport" >>"$run/kafka/server.properties"
        scram=(--add-scram "SCRAM-SHA-256=[name=$STK_SASL_USER,password=$(<"$run/kafka-tls/scram.pass")]")
    fi
    stk_kafka_format "$run" kafka "" "${scram[@]}" || return 1
    stk_spawn_kafka "$run" kafka "$STK_KAFKA_HEAP_OPTS" || return 1
    echo "$port" >"$run/kafka.port"
    stk_wait_port "$run" kafka "$port" 90
}

# Formats RUN/NAME/data unless done before, with cluster id CLUSTER_ID
# (default: a new one), passing EXTRA arguments to the storage tool (e.g.
# --add-scram). Usage: stk_kafka_format RUN NAME [CLUSTER_ID [EXTRA...]]
stk_kafka_format() {
    local run=$1 name=$2 cluster_id=${3:-} dir="$1/$2"
    shift $(($# < 3 ? $# : 3))
    [[ -f $dir/data/meta.properties ]] && return 0
    [[ -n $cluster_id ]] || cluster_id=$(stk_kafka_cluster_id)
    stk_kafka_tool format "$run" kafka.tools.StorageTool format --ignore-formatted "$@" \
        -t "$cluster_id" -c "$dir/server.properties" >>"$run/$name.log" 2>&1 ||
        { tk_fail "formatting Kafka storage failed; see $run/$name.log"; return 1; }
}

# A new Kafka cluster id: 16 random bytes, base64url without padding, not
# starting with "-" (the storage tool would take it for an option: about
# one format in 64 failed with "argument --cluster-id/-t: expected one
# argument"; Kafka's own Uuid.randomUuid avoids it the same way).
stk_kafka_cluster_id() {
    local id
    while id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); [[ $id == -* ]]; do :; done
    echo "$id"
}

# Starts the JVM of the node configured in RUN/NAME with heap options HEAP
# (a word list). Usage: stk_spawn_kafka RUN NAME HEAP
stk_spawn_kafka() {
    local run=$1 name=$2 heap=$3 dir="$1/$2" cds
    cds=$(stk_cds_opt broker "$run")
    # shellcheck disable=SC2086 # the option strings are word lists
    stk_spawn "$run" "$name" java $heap $STK_KAFKA_JVM_OPTS "$cds" \
        -Xlog:cds=off -Xlog:cds+dynamic=off \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" \
        -cp "$STK_KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
}

# ------------------------------------------------------------- Kafka cluster
#
# Cluster mode (`./dev up --brokers 3`, the fault suite's leader-kill test):
# nodes kafka-1..N in the same run dir, each a combined broker+controller
# (a quorum of N voters); topics, consumer offsets and transaction state
# get N replicas and min.insync.replicas N-1. Each node records
# RUN/kafka-I.port and RUN/kafka-I.cport, the cluster id RUN/kafka-cluster.id.

# Heap per node of a cluster; override with KAFKA_CLUSTER_HEAP_OPTS.
STK_KAFKA_CLUSTER_HEAP_OPTS="${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx320m}"

# Names of the cluster nodes recorded in RUN (kafka-1 ...), one a line.
stk_cluster_nodes() {
    stk_numbered "$1" kafka port
}

# Prints the bootstrap list of the cluster of RUN: 127.0.0.1:P1,127.0.0.1:P2,...
stk_cluster_bootstrap() {
    local name list=""
    for name in $(stk_cluster_nodes "$1"); do
        list+="${list:+,}127.0.0.1:$(<"$1/$name.port")"
    done
    echo "$list"
}

# Starts the nodes of a cluster on the given ports (PORTS and CONTROLLER_PORTS:
# space-separated lists of equal length; node I gets the I-th of each); nodes
# already running are left alone. New data dirs are formatted with one
# cluster id; the JVMs start together; returns once every port is open.
# Usage: stk_start_kafka_cluster RUN "PORTS" "CONTROLLER_PORTS"
stk_start_kafka_cluster() {
    local run=$1 ports cports voters="" i n cluster_id
    read -r -a ports <<<"$2"
    read -r -a cports <<<"$3"
    n=${#ports[@]}
    ((n >= 1 && n == ${#cports[@]})) || { tk_fail "stk_start_kafka_cluster: bad port lists"; return 1; }
    for ((i = 1; i <= n; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:${cports[i - 1]}"
    done
    [[ -s $run/kafka-cluster.id ]] || stk_kafka_cluster_id >"$run/kafka-cluster.id"
    cluster_id=$(<"$run/kafka-cluster.id")
    local formatters=() pid
    for ((i = 1; i <= n; i++)); do
        stk_alive "$run" "kafka-$i" >/dev/null && continue
        stk_kafka_node_config "$run" "kafka-$i" "$i" "${ports[i - 1]}" "${cports[i - 1]}" "$voters" "$n"
        echo "${ports[i - 1]}" >"$run/kafka-$i.port"
        echo "${cports[i - 1]}" >"$run/kafka-$i.cport"
        if ((${#formatters[@]} == 0)); then
            # The first format may write the class-data archive; the others
            # then share it and run in parallel.
            stk_kafka_format "$run" "kafka-$i" "$cluster_id" || return 1
            formatters+=(first)
        else
            stk_kafka_format "$run" "kafka-$i" "$cluster_id" &
            formatters+=($!)
        fi
    done
    for pid in "${formatters[@]:1}"; do
        wait "$pid" || return 1
    done
    for ((i = 1; i <= n; i++)); do
        stk_alive "$run" "kafka-$i" >/dev/null && continue
        stk_spawn_kafka "$run" "kafka-$i" "$STK_KAFKA_CLUSTER_HEAP_OPTS" || return 1
    done
    for ((i = 1; i <= n; i++)); do
        stk_wait_port "$run" "kafka-$i" "${ports[i - 1]}" 90 || return 1
    done
}

# Starts the cluster node NAME of RUN again (after a stop or a crash) with
# its configuration and data; returns once its port accepts connections.
# Usage: stk_restart_kafka_node RUN NAME
stk_restart_kafka_node() {
    local run=$1 name=$2 port
    stk_alive "$run" "$name" >/dev/null && return 0
    [[ -f $run/$name/server.properties && -s $run/$name.port ]] ||
        { tk_fail "no Kafka node $name in $run"; return 1; }
    port=$(<"$run/$name.port")
    stk_port_open "$port" && { tk_fail "port $port of $name is taken by another process"; return 1; }
    stk_spawn_kafka "$run" "$name" "$STK_KAFKA_CLUSTER_HEAP_OPTS" || return 1
    stk_wait_port "$run" "$name" "$port" 90
}

# Stops every node of the cluster of RUN, in parallel.
stk_stop_kafka_cluster() {
    local run=$1 name pids=()
    for name in $(stk_cluster_nodes "$run"); do
        stk_stop "$run" "$name" 30 &
        pids+=($!)
    done
    if ((${#pids[@]})); then
        wait "${pids[@]}" || true
    fi
    stk_cds_keep broker "$run"
}

# ------------------------------------------------- SASL_SSL listener (opt-in)

# The SASL user of the SASL_SSL listener (PLAIN and SCRAM-SHA-256).
STK_SASL_USER=ticket

# Files for a SASL_SSL listener in RUN/kafka-tls: a throw-away CA (ca.pem),
# a broker certificate for 127.0.0.1/localhost in a PKCS12 keystore
# (broker.p12, password in store.pass) and the SASL user's password
# (scram.pass). EC keys: made in milliseconds. Usage: stk_kafka_tls RUN
stk_kafka_tls() {
    local dir="$1/kafka-tls"
    tk_need openssl "install openssl (apt-get install openssl)"
    mkdir -p "$dir"
    # `&&` all along: set -e does not act inside the left side of `||`.
    (
        cd "$dir" && umask 077 &&
            od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >store.pass &&
            od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >scram.pass &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
                -subj "/CN=ticket test CA" -keyout ca.key -out ca.pem &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr &&
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext &&
            openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile broker.ext -out broker.pem &&
            openssl pkcs12 -export -in broker.pem -inkey broker.key -name broker \
                -passout file:store.pass -out broker.p12 &&
            chmod a+r ca.pem
    ) >"$dir/openssl.log" 2>&1 || { tk_fail "making the test CA failed; see $dir/openssl.log"; return 1; }
}

# Lines appended to server.properties for a SASL_SSL listener (later keys win
# in a properties file): TLS with the keystore of stk_kafka_tls, and the user
# STK_SASL_USER both for PLAIN (static, in the JAAS line) and for
# SCRAM-SHA-256 (made by the storage format). Our librdkafka (2.0.2) can only
# use PLAIN with Kafka 4.x: its SCRAM is refused (common/tk_kafka.c).
# Usage: stk_kafka_sasl_ssl_config RUN PORT CONTROLLER_PORT SASL_SSL_PORT
stk_kafka_sasl_ssl_config() {
    local port=$2 cport=$3 sport=$4 tls="$1/kafka-tls"
    cat <<EOF
# SASL_SSL listener (stk_kafka_sasl_ssl_config)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$STK_SASL_USER="$(<"$tls/scram.pass")";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$(<"$tls/store.pass")
EOF
}

# Creates the topics of docs/contract.md (idempotent) and waits until every
# partition has a leader (with REPLICAS above 1, also until every replica is
# in sync). BROKERS: a port on 127.0.0.1, or a host:port list. REPLICAS: the
# replication factor of new topics, default 1.
# Usage: stk_create_topics RUN BROKERS [REPLICAS]
stk_create_topics() {
    local run=$1 brokers=$2 replicas=${3:-1}
    [[ $brokers == *:* ]] || brokers="127.0.0.1:$brokers"
    if ! stk_kafka_tool topics "$run" EnsureTopics "--replicas=$replicas" "$brokers" 60000 "${STK_TOPICS[@]}" \
            >>"$run/kafka.log" 2>"$run/kafka-topics.err"; then
        tk_fail "creating Kafka topics failed: $(tail -n 3 "$run/kafka-topics.err"); see $run/kafka.log"
        return 1
    fi
    rm -f "$run/kafka-topics.err"
}

# Stops the broker of RUN and every node of its cluster, if any.
stk_stop_kafka() {
    local run=$1
    stk_stop_kafka_cluster "$run"
    stk_stop "$run" kafka 30
    stk_cds_keep broker "$run"
}

# ------------------------------------------------------------------ PostgreSQL

# PostgreSQL refuses to run as root; as root, its programs run as Debian's
# `postgres` user (made by the postgresql-15 package) on files it owns.
STK_PG_AS=()
if ((EUID == 0)); then
    STK_PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
stk_pg_run() {
    "${STK_PG_AS[@]}" "$@"
}

# Unix socket directory of RUN's PostgreSQL (also the parent of its data).
stk_pg_dir() {
    echo "$1/postgres"
}

# libpq/pgx URL of RUN's PostgreSQL, database ferretdb, over the socket.
stk_pg_url() {
    echo "postgres://ferretdb@/ferretdb?host=$(stk_pg_dir "$1")&port=$STK_PG_PORT"
}

# psql on RUN's database ferretdb. Usage: stk_psql RUN PSQL_ARGS...
stk_psql() {
    local run=$1
    shift
    "$STK_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(stk_pg_dir "$run")" -p "$STK_PG_PORT" \
        -U ferretdb -d ferretdb "$@"
}

# No index of our own: FerretDB's patch 0001 (TypedPushdown) pushes every
# equality the worker filters on (strings, ObjectIds, dates) down as
# `_jsonb->'f' = v`, ranges, sorts and LIMIT likewise, and the B-trees the
# worker asks for with createIndexes (and FerretDB's own on _id) serve them
# all. (Until 2026-12-03 an event trigger added a GIN index per filtered
# field for `@>`; besides costing every write, the GIN next to the B-tree led
# the planner to sort a whole team for a first page.) FerretDB's aggregate
# does not use the patch's pushdown: a $match there reads the whole table
# (the worker sends no aggregate).

# initdb into RUN/postgres/data (once), then the database ferretdb.
stk_pg_init() {
    local run=$1 dir data
    dir=$(stk_pg_dir "$run")
    data="$dir/data"
    [[ -f $data/PG_VERSION ]] && return 0
    [[ -x $STK_PG_BIN/initdb ]] || { tk_fail "no $STK_PG_BIN/initdb (apt-get install postgresql-15)"; return 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    if ((EUID == 0)); then
        chmod a+x "$run" # the postgres user must reach its directory
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    # Locale C: jsonb strings (and ObjectIds as hex) compare bytewise, as
    # MongoDB compares them; sorts pushed down by the patch rely on that.
    stk_pg_run "$STK_PG_BIN/initdb" -D "$data" -U ferretdb -A trust -E UTF8 --locale=C \
        --no-instructions >>"$run/postgres.log" 2>&1 ||
        { tk_fail "initdb failed; see $run/postgres.log"; return 1; }
    cat >>"$data/postgresql.conf" <<EOF

# ---- written by scripts/stack.sh (dev/test/bench only) ----
listen_addresses = ''                # Unix socket only: no TCP port to collide
unix_socket_directories = '$dir'
port = $STK_PG_PORT
# FerretDB passes field names as bind parameters (_jsonb->\$1 @> \$2); a
# generic plan cannot match the expression indexes, a custom plan can.
plan_cache_mode = force_custom_plan
# Queries here are small; JIT compilation would only add latency.
jit = off
# A process crash (what the fault suite does) loses no committed write
# without fsync; only a machine crash could. Dev data is disposable.
fsync = off
full_page_writes = off
max_connections = 200                # FerretDB's pool: up to 50 per stack
shared_buffers = 128MB
log_min_messages = warning
EOF
    stk_spawn "$run" postgres "${STK_PG_AS[@]}" "$STK_PG_BIN/postgres" -D "$data" || return 1
    stk_pg_wait "$run" 30 || return 1
    if ! "$STK_PG_BIN/psql" -X -q -h "$dir" -p "$STK_PG_PORT" -U ferretdb -d postgres \
            -c 'CREATE DATABASE ferretdb' >>"$run/postgres.log" 2>&1; then
        tk_fail "creating database ferretdb failed; see $run/postgres.log"
        stk_stop_postgres "$run"
        rm -rf "$data"
        return 1
    fi
    stk_stop_postgres "$run"
}

# Waits until RUN's PostgreSQL accepts connections. Usage: stk_pg_wait RUN TIMEOUT_S
stk_pg_wait() {
    stk_wait_for "$1" postgres "$2" "accepting connections" \
        "$STK_PG_BIN/pg_isready" -q -h "$(stk_pg_dir "$1")" -p "$STK_PG_PORT" -d postgres -U ferretdb
}

# Starts RUN's PostgreSQL (initdb on first use); returns once it accepts
# connections. Usage: stk_start_postgres RUN
stk_start_postgres() {
    local run=$1 dir
    stk_alive "$run" postgres >/dev/null && return 0
    dir=$(stk_pg_dir "$run")
    # sun_path holds 107 bytes: DIR/.s.PGSQL.5432
    if ((${#dir} + 16 > 107)); then
        tk_fail "run directory path too long for a Unix socket: $dir"
        return 1
    fi
    stk_pg_init "$run" || return 1
    stk_spawn "$run" postgres "${STK_PG_AS[@]}" "$STK_PG_BIN/postgres" -D "$dir/data" || return 1
    echo "$STK_PG_PORT" >"$run/postgres.port"
    stk_pg_wait "$run" 60
}

# Fast shutdown (sessions are ended; a smart one would wait for FerretDB's
# pool to close), then stk_stop's SIGTERM/SIGKILL for anything left.
stk_stop_postgres() {
    local run=$1 pid i
    pid=$(stk_alive "$run" postgres) || { rm -f "$run/postgres.pid"; return 0; }
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    stk_stop "$run" postgres 5
}

# -------------------------------------------------------------------- FerretDB

# Starts FerretDB on 127.0.0.1:PORT, on RUN's PostgreSQL (started first if
# down) or, with FERRETDB_BACKEND=sqlite, on SQLite files in RUN/ferretdb/data
# (the old default, kept for comparisons). Usage: stk_start_ferretdb RUN PORT
stk_start_ferretdb() {
    local run=$1 port=$2 backend_args
    mkdir -p "$run/ferretdb"
    if [[ $STK_FERRETDB_BACKEND == sqlite ]]; then
        backend_args=(-backend sqlite -data "$run/ferretdb/data")
    else
        stk_start_postgres "$run" || return 1
        backend_args=(-backend postgresql -postgresql-url "$(stk_pg_url "$run")")
    fi
    # FERRETDB_DEBUG_ADDR (e.g. 127.0.0.1:6060): Go's pprof, for profiling the database's CPU.
    [[ -n ${FERRETDB_DEBUG_ADDR:-} ]] && backend_args+=(-debug-addr "$FERRETDB_DEBUG_ADDR")
    stk_spawn "$run" ferretdb "$STK_FERRETDB_BIN" -listen "127.0.0.1:$port" \
        "${backend_args[@]}" -log-level "${FERRETDB_LOG_LEVEL:-warn}" || return 1
    echo "$port" >"$run/ferretdb.port"
    stk_wait_port "$run" ferretdb "$port" 30 || return 1
    local i
    for ((i = 0; i < 50; i++)); do
        stk_mongo_ping "$port" && return 0
        sleep 0.1
    done
    tk_fail "FerretDB on port $port does not answer ping; see $run/ferretdb.log"
    return 1
}

# Sends {ping: 1} as an OP_MSG (MongoDB wire protocol) with the Python
# standard library only, and succeeds when the answer says ok: 1.
stk_mongo_ping() {
    tk_python - "$1" <<'EOF'
import socket, struct, sys
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1) + b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc                 # flagBits, section kind 0
head = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)   # OP_MSG
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(head + msg)
        data = b""
        while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
except OSError:
    sys.exit(1)
# An ok:1 double (type 0x01) in the reply document.
sys.exit(0 if b"\x01ok\x00" + struct.pack("<d", 1.0) in data else 1)
EOF
}

stk_stop_ferretdb() {
    stk_stop "$1" ferretdb 10
}

# The database as the service sees it: FerretDB, then its PostgreSQL.
stk_stop_database() {
    stk_stop_ferretdb "$1"
    stk_stop_postgres "$1"
}

# ------------------------------------------------------------ on free ports

# Kafka and FerretDB of a private stack (./dev test, ./dev bench) on ports the
# kernel picks; when another stack binds one between the pick and the start,
# they start again on new ones (3 attempts).

# True, after a warning, when RUN/NAME.log says that a port was taken.
stk_port_was_taken() {
    grep -qi 'address already in use' "$1/$2.log" 2>/dev/null || return 1
    tk_warn "port taken while $2 started (attempt $3); retrying"
}

# Starts Kafka of RUN and sets STK_KAFKA_PORT; with --sasl-ssl also a SASL_SSL
# listener (on STK_KAFKA_SASL_SSL_PORT). Usage: stk_start_kafka_free RUN [--sasl-ssl]
stk_start_kafka_free() {
    local run=$1 attempt cport sport=()
    if [[ ${2:-} == --sasl-ssl ]]; then stk_kafka_tls "$run" || return 1; fi
    for attempt in 1 2 3; do
        STK_KAFKA_PORT=$(stk_free_port)
        cport=$(stk_free_port)
        [[ -z ${2:-} ]] || sport=("$(stk_free_port)")
        [[ " $cport ${sport[*]} " != *" $STK_KAFKA_PORT "* && ${sport[0]:-} != "$cport" ]] || continue
        if stk_start_kafka "$run" "$STK_KAFKA_PORT" "$cport" "${sport[@]}"; then
            # shellcheck disable=SC2034 # read by ./dev test
            STK_KAFKA_SASL_SSL_PORT=${sport[0]:-}
            return 0
        fi
        stk_port_was_taken "$run" kafka "$attempt" || return 1
        stk_stop_kafka "$run"
        rm -rf "$run/kafka"
    done
    return 1
}

# Starts FerretDB of RUN (and its PostgreSQL) and sets STK_MONGO_PORT.
stk_start_ferretdb_free() {
    local run=$1 attempt
    for attempt in 1 2 3; do
        STK_MONGO_PORT=$(stk_free_port)
        stk_start_ferretdb "$run" "$STK_MONGO_PORT" && return 0
        stk_port_was_taken "$run" ferretdb "$attempt" || return 1
        stk_stop_ferretdb "$run"
    done
    return 1
}

# ------------------------------------------------------------------------ both

# Stops the database and Kafka of RUN, in parallel (each takes about a second).
stk_stop_infra() {
    local run=$1 database_stopper
    stk_stop_database "$run" &
    database_stopper=$!
    stk_stop_kafka "$run"
    wait "$database_stopper" || true
}
