"""The report of ./dev bench: markdown tables from the load generator's results.

usage: report.py RESULTS_DIR [--set KEY=VALUE]...   prints the tables
       report.py RESULTS_DIR --errors                 prints one line per run with
                                                      error answers, exits 1 if any

RESULTS_DIR holds one JSON object per run (NAME.json, written by
bench/loadgen.c, plus "tickets": the tickets in the database before the run),
and optionally walk.md and dbprobe.md (pasted as they are). The --set values
describe the run (bench/run.sh passes them); method in BENCHMARKS.md.
"""

import json
import os
import subprocess
import sys
import time

WORKLOADS = [
    ("healthz", "gateway only: GET /healthz"),
    ("admin", "admin list (all tickets)"),
    ("list", "team list (100 tickets)"),
    ("latency-create", "create-ticket, one connection"),
    ("latency-reply", "customer reply, one connection"),
    ("latency-get", "get-ticket, one connection"),
    ("latency-page", "team list, first page (limit=50), one connection"),
    ("create", "create-ticket"),
    ("create-open", "create-ticket at half the peak"),
    ("reply", "customer reply"),
    ("mix", "mix: 80% team list, 10% create, 10% reply"),
]

# (ours, baseline, title, target ratio or None)
BASELINE_PAIRS = [
    ("create", "baseline-create", "create-ticket, closed loop", 2.5),
    ("latency-create", "baseline-latency-create", "create-ticket, one connection", None),
    ("mix", "baseline-mix", "mix: 80% team list, 10% create, 10% reply", 3.0),
]

TABLE_HEAD = (
    "| workload | load | tickets in DB | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | CPU gateway | "
    "CPU worker | CPU gw+wk | CPU broker | CPU db | CPU loadgen | machine busy | other sessions (cores) |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
OURS_HEAD = (
    "| workload | req/s | gateway CPU µs/req | gateway context switches/req | worker CPU µs/req | "
    "worker context switches/req | peak RSS gateway MB | peak RSS worker MB |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)
SCALE_HEAD = (
    "| workers | req/s | speed-up | p50 ms | p99 ms | errors | CPU gateway | CPU worker (sum) | CPU broker | "
    "CPU db | machine busy | other sessions (cores) | cores used: gateway | worker | broker | db |\n"
    "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
BASELINE_HEAD = (
    "| workload | load | tickets in DB: ours / baseline | ours req/s | baseline req/s | ours / baseline | target | ours p50 / p99 ms | "
    "baseline p50 / p99 ms | CPU µs/req: ours (gw+wk+broker+db) | baseline (node+db) | baseline / ours CPU | "
    "other sessions (cores): ours | baseline |\n"
    "|---|---|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|"
)


def f0(v):
    return f"{float(v):.0f}"


def f1(v):
    return f"{float(v):.1f}"


def f2(v):
    return f"{float(v):.2f}"


def mb(kb):
    return f"{float(kb) / 1024:.1f}"


def verdict(value, op, limit):
    ok = float(value) <= limit if op == "<=" else float(value) >= limit
    return "met" if ok else "**missed**"


class Results:
    def __init__(self, directory):
        self.dir = directory

    def get(self, name):
        try:
            with open(os.path.join(self.dir, name + ".json"), encoding="utf-8") as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return None

    def names(self):
        return sorted(n[:-5] for n in os.listdir(self.dir) if n.endswith(".json"))

    def text(self, name):
        try:
            with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""


def errors_text(r):
    if int(r.get("errors", 0)) == 0:
        text = "0"
    else:
        text = f"{r['errors']} ({r['error_detail']})"
    if int(r.get("server_closes", 0)):
        text += f"; server closed {r['server_closes']} conns"
    return text


def load_text(r):
    return f"open, {f0(r['rate'])} req/s" if r["mode"] == "open" else f"closed, c={r['connections']}"


def others(r):
    """Cores of everything else on the machine; the part the hypervisor
    took for other machines (steal) in brackets."""
    text = f2(r.get("others_cores", 0))
    steal = float(r.get("steal_cores", 0))
    return f"{text} ({f2(steal)} stolen)" if steal >= 0.01 else text


def cpu(r, name):
    return float(r.get(f"cpu_{name}_ms_per_1k", 0))


def row(r, title):
    cells = [
        title, load_text(r), str(r.get("tickets", "-")), f0(r["rps"]), f2(r["p50_ms"]), f2(r["p90_ms"]),
        f2(r["p99_ms"]), f2(r["p999_ms"]), errors_text(r), f1(cpu(r, "gateway")), f1(cpu(r, "worker")),
        f1(cpu(r, "gateway") + cpu(r, "worker")), f1(cpu(r, "broker")), f1(cpu(r, "db")), f1(cpu(r, "loadgen")),
        f"{r['machine_busy_pct']}%", others(r),
    ]
    return "| " + " | ".join(cells) + " |"


def ours_row(r, title):
    cells = [
        title, f0(r["rps"]), f1(cpu(r, "gateway")), f1(r.get("cs_gateway_per_req", 0)), f1(cpu(r, "worker")),
        f1(r.get("cs_worker_per_req", 0)), mb(r.get("hwm_gateway_kb", 0)), mb(r.get("hwm_worker_kb", 0)),
    ]
    return "| " + " | ".join(cells) + " |"


def scale_row(n, r, base):
    d = float(r["duration_s"]) or 1.0
    speedup = f2(float(r["rps"]) / base) if base > 0 else "-"
    cells = [
        str(n), f0(r["rps"]), speedup, f2(r["p50_ms"]), f2(r["p99_ms"]), errors_text(r), f1(cpu(r, "gateway")),
        f1(cpu(r, "worker")), f1(cpu(r, "broker")), f1(cpu(r, "db")), f"{r['machine_busy_pct']}%",
        others(r),
    ]
    cells += [f2(float(r.get(f"cpu_{p}_ms", 0)) / 1000 / d) for p in ("gateway", "worker", "broker", "db")]
    return "| " + " | ".join(cells) + " |"


def baseline_section(res):
    rows = []
    for ours_name, base_name, title, target in BASELINE_PAIRS:
        ours, base = res.get(ours_name), res.get(base_name)
        if ours is None or base is None:
            continue
        ratio = float(ours["rps"]) / float(base["rps"]) if float(base["rps"]) > 0 else 0.0
        goal = f"≥ {target}×: {verdict(ratio, '>=', target)}" if target else "-"
        ours_cpu = sum(cpu(ours, p) for p in ("gateway", "worker", "broker", "db"))
        base_cpu = cpu(base, "baseline") + cpu(base, "db")
        cells = [
            title, load_text(ours), f"{ours.get('tickets', '-')} / {base.get('tickets', '-')}", f0(ours["rps"]), f0(base["rps"]), f"{ratio:.2f}×", goal,
            f"{f2(ours['p50_ms'])} / {f2(ours['p99_ms'])}", f"{f2(base['p50_ms'])} / {f2(base['p99_ms'])}",
            f0(ours_cpu), f0(base_cpu), f"{base_cpu / ours_cpu:.2f}×" if ours_cpu > 0 else "-", others(ours), others(base),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def ratio_of(res, ours_name, base_name):
    ours, base = res.get(ours_name), res.get(base_name)
    if ours is None or base is None or float(base["rps"]) <= 0:
        return None
    return float(ours["rps"]) / float(base["rps"])


def issue11_section(res):
    """The targets of issue 11 that one run of ours and the baseline measures."""
    rows = []
    ratio = ratio_of(res, "create", "baseline-create")
    if ratio is not None:
        rows.append(f"| create-ticket peak, c={res.get('create')['connections']}, against the baseline | "
                    f"{ratio:.2f}× | ≥ 2.5×: {verdict(ratio, '>=', 2.5)} |")
    r = res.get("create")
    if r:
        parts = {p: cpu(r, p) for p in ("gateway", "worker", "broker", "db")}
        total = sum(parts.values())
        split = ", ".join(f"{p} {f0(v)}" for p, v in parts.items())
        rows.append(f"| CPU per create at c={r['connections']}, all four processes | {total / 1000:.3f} ms ({split} µs) | "
                    f"≤ 0.6 ms: {verdict(total / 1000, '<=', 0.6)} |")
    r = res.get("create-open")
    if r:
        rows.append(f"| p99 at half our peak, open loop | {f2(r['p99_ms'])} ms at {f0(r['rate'])} req/s | "
                    f"≤ 25 ms: {verdict(r['p99_ms'], '<=', 25)} |")
    r = res.get("latency-create")
    if r:
        rows.append(f"| one connection, create-ticket | p50 {f2(r['p50_ms'])} ms, p99 {f2(r['p99_ms'])} ms | "
                    f"p50 ≤ 2 ms: {verdict(r['p50_ms'], '<=', 2)}, p99 ≤ 6 ms: {verdict(r['p99_ms'], '<=', 6)} |")
    ratio = ratio_of(res, "mix", "baseline-mix")
    if ratio is not None:
        rows.append(f"| mix 80 % team list, 10 % create, 10 % reply, against the baseline | {ratio:.2f}× | "
                    f"≥ 3×: {verdict(ratio, '>=', 3)} |")
    rows += scaling_rows(res)
    if not rows:
        return []
    return ["", "### Against the targets of issue 11", "", "| target | measured | |", "|---|---|---|"] + rows


def scaling_rows(res):
    """4 workers against 1 with the database 2 ms away (bench/latency.sh), as
    configured (group commit) and with every create its own round trip."""
    rows = []
    for suffix, what in (("-t4", "WORKER_THREADS=4, group commit"),
                         ("-t1-b1", "one lane each, batching off")):
        one, four = res.get(f"lat-w1{suffix}"), res.get(f"lat-w4{suffix}")
        if not one or not four or not float(one["rps"]):
            continue
        ratio = float(four["rps"]) / float(one["rps"])
        rows.append(f"| with 2 ms to the database, 4 workers against 1 ({what}) | "
                    f"{f0(one['rps'])} → {f0(four['rps'])} req/s = {ratio:.2f}× | ≥ 3×: {verdict(ratio, '>=', 3)} |")
    return rows


def git_commit(root):
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "-C", root, "diff", "--quiet", "HEAD", "--", "gateway", "worker", "common"],
                           capture_output=True, check=False).returncode
    return commit + (" (+ uncommitted changes)" if dirty else "")


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def loadavg():
    with open("/proc/loadavg", encoding="utf-8") as f:
        return " ".join(f.read().split()[:3])


def report(res, s):
    out = []
    p = out.append
    want = set(s.get("steps", "").split(","))
    p(f"## ./dev bench — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    p("")
    p(f"- commit {git_commit(s.get('root', '.'))}; mode: {s.get('mode')}, measured {s.get('duration')}s per run "
      f"after {s.get('warmup')}s warm-up; each stack first served {s.get('warm_up', '0')}s of team-list reads, "
      f"not measured (a JVM broker's JIT is cold for minutes)")
    p(f"- machine: {os.cpu_count()} CPUs, {cpu_model()}; load average before: {s.get('load_before')}, "
      f"after: {loadavg()}")
    p(f"- JVMs on the machine at start: {s.get('java_before')} (ours is one; others belong to other stacks)")
    p(f"- stack: Kafka (KRaft, 1 node), FerretDB ({s.get('backend')}), {s.get('workers')} worker(s) x "
      f"WORKER_THREADS={s.get('worker_threads')}, 1 gateway (HTTP_THREADS=2, ACCESS_LOG=off, LOG_LEVEL=warn), "
      "all on this machine with the load generator")
    p(f"- data: the team list reads a team of {s.get('seed_list')} tickets, replies go to a set of "
      f"{s.get('seed_reply')} tickets of another team, creates of the mix to a third team; the admin list returns "
      'every ticket in the DB (column "tickets in DB", counted before each run)')
    p("- CPU columns: CPU time (user+system, /proc/PID/stat) per 1,000 requests in ms, i.e. µs per request, idle "
      "cost included; peak RSS: VmHWM during the run; other sessions: CPU of everything else on the machine during "
      f"the run, in cores (of {os.cpu_count()}), with, in brackets, the part stolen: time the hypervisor gave our "
      "vCPUs to other machines (/proc/stat steal)")
    p(f"- CPU with no load at all (ms per second, over {s.get('idle_seconds')}s): {s.get('idle_text')}")
    p("")
    p("### Workloads")
    p("")
    p(TABLE_HEAD)
    for name, title in WORKLOADS:
        r = res.get(name)
        if r is not None:
            p(row(r, title))
    p("")
    p("### Our processes per request")
    p("")
    p(OURS_HEAD)
    for name, title in WORKLOADS:
        r = res.get(name)
        if r is not None:
            p(ours_row(r, title))
    if "scaling" in want:
        p("")
        p(f"### Worker scaling (create-ticket, closed loop, c={s.get('conns')}, {s.get('scale_duration')}s)")
        p("")
        p(SCALE_HEAD)
        first = res.get("scale-1")
        base = float(first["rps"]) if first else 0.0
        for n in (1, 2, 4):
            r = res.get(f"scale-{n}")
            if r is not None:
                p(scale_row(n, r, base))
    hold = res.get("hold")
    if hold is not None:
        p("")
        p("### Waiting requests (workers stopped with SIGSTOP, REQUEST_TIMEOUT_MS=60000)")
        p("")
        p("| waiting requests | gateway VmRSS before MB | after MB | KB per waiting request | connect+send s | "
          "answered after SIGCONT within s | ok | errors |")
        p("|---:|---:|---:|---:|---:|---:|---:|---|")
        p(f"| {hold['held']} | {mb(hold['rss_before_kb'])} | {mb(hold['rss_after_kb'])} | "
          f"{f2(hold['kb_per_request'])} | {f2(hold['connect_s'])} | {f2(hold['drain_s'])} | {hold['ok']} | "
          f"{errors_text(hold)} |")
    for file, title in (("scaling-latency.md", "Workers with latency to the database (scaling-latency, bench/latency.sh)"),
                        ("walk.md", "Admin list, page by page over HTTP"),
                        ("dbprobe.md", "Database probe (the worker's query shapes, timed directly with pymongo "
                                       "at the end)")):
        text = res.text(file)
        if text.strip():
            p("")
            p(f"### {title}")
            p("")
            p(text.rstrip("\n"))
    rows = baseline_section(res)
    if rows:
        base = res.get("baseline-create") or {}
        p("")
        p("### Against the baseline (bench/baseline: Express + Mongoose, same FerretDB, issue 11)")
        p("")
        p(f"The baseline ran right after our runs, with our gateway, workers and broker stopped, in a database of "
          f"its own on the same FerretDB ({s.get('baseline_info', 'node')}); same load generator, tokens and "
          "workloads. CPU µs/req sums every process of each side (idle cost included); \"baseline / ours CPU\" "
          "is how many times more CPU the baseline burns per request, a ratio that depends less than req/s on "
          "what other sessions do to the machine meanwhile (last two columns).")
        p("")
        p(BASELINE_HEAD)
        out.extend(rows)
        if base:
            p("")
            p(f"(baseline peak RSS during create c={base.get('connections')}: "
              f"{mb(base.get('hwm_baseline_kb', 0))} MB)")
    out.extend(issue11_section(res))
    p("")
    p("### Against the targets of issue 4")
    p("")
    p("| target | measured | |")
    p("|---|---|---|")
    r = res.get("latency-create")
    if r:
        p(f"| create-ticket at c=1: p50 ≤ 2 ms, p99 ≤ 5 ms | p50 {f2(r['p50_ms'])} ms, p99 {f2(r['p99_ms'])} ms | "
          f"{verdict(r['p50_ms'], '<=', 2)} / {verdict(r['p99_ms'], '<=', 5)} |")
    r = res.get("latency-reply")
    if r:
        p(f"| reply at c=1: p50 ≤ 2 ms, p99 ≤ 5 ms | p50 {f2(r['p50_ms'])} ms, p99 {f2(r['p99_ms'])} ms | "
          f"{verdict(r['p50_ms'], '<=', 2)} / {verdict(r['p99_ms'], '<=', 5)} |")
    r = res.get("create")
    if r:
        p(f"| create-ticket ≥ 3,000 req/s | {f0(r['rps'])} req/s (c={s.get('conns')}) | "
          f"{verdict(r['rps'], '>=', 3000)} |")
        both = cpu(r, "gateway") + cpu(r, "worker")
        p(f"| gateway + worker CPU ≤ 100 µs per create-ticket | {both:.1f} µs (gateway {f1(cpu(r, 'gateway'))}, "
          f"worker {f1(cpu(r, 'worker'))}) | {verdict(both, '<=', 100)} |")
    r = res.get("create-open")
    if r:
        p(f"| create-ticket p99 ≤ 25 ms at half the peak | p99 {f2(r['p99_ms'])} ms at {f0(r['rate'])} req/s "
          f"(open loop) | {verdict(r['p99_ms'], '<=', 25)} |")
    r = res.get("list")
    if r:
        p(f"| team list (100 tickets) ≥ 1,000 req/s | {f0(r['rps'])} req/s | {verdict(r['rps'], '>=', 1000)} |")
    r = res.get("healthz")
    if r:
        p(f"| gateway alone (/healthz) ≥ 50,000 req/s | {f0(r['rps'])} req/s | {verdict(r['rps'], '>=', 50000)} |")
    if hold:
        p(f"| ≤ 8 KB gateway RSS per waiting request (10,000 waiting) | {f2(hold['kb_per_request'])} KB with "
          f"{hold['held']} waiting | {verdict(hold['kb_per_request'], '<=', 8)} |")
    if res.get("scale-1") and res.get("scale-2"):
        rates = [f0(res.get(f"scale-{n}")["rps"]) if res.get(f"scale-{n}") else "-" for n in (1, 2, 4)]
        p(f"| a second worker raises throughput (when the DB is not the limit) | 1: {rates[0]}, 2: {rates[1]}, "
          f"4: {rates[2]} req/s | see the CPU split |")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    res = Results(argv[1])
    if argv[2:] == ["--errors"]:
        failed = 0
        for name in res.names():
            r = res.get(name)
            if r and int(r.get("errors", 0)):
                print(f"bench run {name}: {r['errors']} error(s) ({r['error_detail']})")
                failed += 1
        return 1 if failed else 0
    settings = {}
    args = argv[2:]
    while args:
        if args[0] != "--set" or len(args) < 2 or "=" not in args[1]:
            sys.exit(f"report.py: unexpected argument {args[0]!r}\n{__doc__}")
        key, value = args[1].split("=", 1)
        settings[key] = value
        args = args[2:]
    sys.stdout.write(report(res, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
