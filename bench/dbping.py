"""Round trip to the database, direct and through the latency proxy.

usage: dbping.py DIRECT_PORT PROXY_PORT [N]
Times N `ping` commands (pymongo, one connection) on each port and prints one
markdown table row per port: p50, p99 and min in ms, and the difference of
the medians (the latency the proxy adds to one round trip).
"""

import sys
import time

from pymongo import MongoClient


def times(port, n):
    client = MongoClient(f"mongodb://127.0.0.1:{port}/", directConnection=True, maxPoolSize=1)
    try:
        client.admin.command("ping")  # connect and handshake outside the timing
        out = []
        for _ in range(n):
            t = time.perf_counter()
            client.admin.command("ping")
            out.append((time.perf_counter() - t) * 1000)
        return sorted(out)
    finally:
        client.close()


def main():
    direct, proxy = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    rows = [("direct", times(direct, n)), ("through the delay proxy", times(proxy, n))]
    p50 = [r[len(r) // 2] for _, r in rows]
    print("| database `ping`, one connection | p50 ms | p99 ms | min ms |")
    print("|---|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r[len(r) // 2]:.2f} | {r[int(len(r) * 0.99)]:.2f} | {r[0]:.2f} |")
    print(f"\nAdded to one round trip (p50): {p50[1] - p50[0]:.2f} ms.")


if __name__ == "__main__":
    main()
