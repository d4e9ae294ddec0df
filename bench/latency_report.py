"""The table of ./dev bench --only scaling-latency: create-ticket with the
database DELAY ms away from the workers (bench/delayproxy.c), for 1, 2, 4
workers, for WORKER_THREADS 1..8 with one worker, and for 1, 2, 4 workers of
one lane each with batching off (lat-w*-t1-b1: every create its own round trip).

usage: latency_report.py RESULTS_DIR DELAY_MS PING_MD
Reads lat-w*-t*.json (bench/loadgen.c results, with a "proxy" CPU group) and
prints markdown: the ping table, then one row per run.
"""

import json
import os
import re
import sys

HEAD = (
    "| workers × threads | req/s | speed-up | p50 ms | p99 ms | errors | creates per DB round trip | "
    "CPU µs/req: all | gateway | worker (sum) | "
    "broker | db | delay proxy | cores used: gateway | worker | broker | db | proxy | machine busy | "
    "other sessions (cores) |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(name, r, base, trips):
    d = float(r["duration_s"]) or 1.0
    rps = float(r["rps"])
    cells = [name, f"{rps:.0f}", f"{rps / base:.2f}" if base > 0 else "-", f"{float(r['p50_ms']):.2f}",
             f"{float(r['p99_ms']):.2f}", str(r.get("errors", 0))]
    # Creates of warm-up and window, at the window's rate.
    creates = rps * float(trips["seconds"]) if trips else 0.0
    cells.append(f"{creates / trips['round_trips']:.1f}" if trips and trips["round_trips"] > 0 else "-")
    groups = ("gateway", "worker", "broker", "db", "proxy")
    cells.append(f"{sum(float(r.get(f'cpu_{g}_ms_per_1k', 0)) for g in groups):.0f}")
    cells += [f"{float(r.get(f'cpu_{g}_ms_per_1k', 0)):.0f}" for g in groups]
    cells += [f"{float(r.get(f'cpu_{g}_ms', 0)) / 1000 / d:.2f}" for g in groups]
    cells += [f"{r.get('machine_busy_pct', 0)}%", f"{float(r.get('others_cores', 0)):.2f}"]
    return "| " + " | ".join(cells) + " |"


def main():
    results, delay, ping = sys.argv[1], sys.argv[2], sys.argv[3]
    runs, trips = {}, {}
    for f in os.listdir(results):
        m = re.fullmatch(r"lat-w(\d+)-t(\d+)(?:-b(\d+))?\.json", f)
        if m:
            key = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
            with open(os.path.join(results, f)) as fh:
                runs[key] = json.load(fh)
            try:
                with open(os.path.join(results, f[:-5] + ".trips")) as fh:
                    trips[key] = json.load(fh)
            except (OSError, ValueError):
                pass
    if os.path.exists(ping):
        with open(ping) as fh:
            print(fh.read().rstrip("\n"))
        print()
    print(f"create-ticket, closed loop, with {delay} ms each way between the workers and the database; "
          "speed-up against the first row of each table; creates per DB round trip: creates of warm-up and "
          "window (at the window's rate) over the round trips the workers made through the proxy meanwhile "
          "(the insertMany batch size reached; 1 without batching); "
          "CPU in µs per request (idle cost included), \"all\" sums the five.")
    batched = [k for k in runs if k[2] == 0]
    for title, keys in (("Workers (WORKER_THREADS fixed)", sorted(k for k in batched if k[0] > 1 or k[1] == 4)),
                        ("WORKER_THREADS, one worker", sorted(k for k in batched if k[0] == 1)),
                        ("Workers of one lane each, batching off (WORKER_THREADS=1, WORKER_BATCH_MAX=1)",
                         sorted(k for k in runs if k[2] == 1))):
        if not keys:
            continue
        print(f"\n{title}\n")
        print(HEAD)
        base = float(runs[keys[0]]["rps"])
        for k in keys:
            print(row(f"{k[0]} × {k[1]}", runs[k], base, trips.get(k)))


if __name__ == "__main__":
    main()
