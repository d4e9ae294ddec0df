"""Walks a list of the HTTP API page by page (DESIGN.md "Lists": `limit`,
opaque `cursor`, next page announced by `Link: <...>; rel="next"`) on one
keep-alive connection and prints a markdown table of the latency of the
first page and of the later ones. Run by bench/run.sh (step `walk`).

Exits 0 with a note instead of a table when the route does not page yet
(no 200 or no Link header on a first page that should have one).

usage: pagewalk.py BASE_URL PATH TOKEN [MAX_PAGES] [LIMIT]
  e.g. pagewalk.py http://127.0.0.1:8000 /api/ticket/admin-get-tickets TOKEN 40 50
"""

import http.client
import json
import re
import statistics
import sys
import time
import urllib.parse

LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def main(argv):
    base, path, token = argv[1], argv[2], argv[3]
    max_pages = int(argv[4]) if len(argv) > 4 else 40
    limit = int(argv[5]) if len(argv) > 5 else 50
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
    target = "%s?limit=%d" % (path, limit)
    times, returned = [], 0
    while target and len(times) < max_pages:
        t0 = time.perf_counter()
        conn.request("GET", target, headers={"Authorization": "Bearer " + token})
        answer = conn.getresponse()
        body = answer.read()
        times.append((time.perf_counter() - t0) * 1000.0)
        if answer.status != 200:
            print("(page walk skipped: %s answered %d after %d pages)" % (target, answer.status, len(times) - 1))
            return
        data = json.loads(body).get("data") or []
        returned += len(data)
        match = LINK_NEXT.search(answer.getheader("Link") or "")
        if match is None:
            if len(times) == 1 and len(data) >= limit:
                print("(page walk skipped: a full first page without a Link header; the API does not page yet)")
                return
            target = None
        else:
            nxt = urllib.parse.urlsplit(urllib.parse.urljoin(base + path, match.group(1)))
            target = nxt.path + ("?" + nxt.query if nxt.query else "")
    later = times[1:]
    print("| walk of `%s` (limit=%d) | pages | tickets | first page ms | later pages p50 ms | p90 ms | max ms |" % (path, limit))
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("| one connection, keep-alive | %d | %d | %.2f | %s | %s | %s |" % (
        len(times), returned, times[0],
        "%.2f" % statistics.median(later) if later else "-",
        "%.2f" % percentile(later, 90) if later else "-",
        "%.2f" % max(later) if later else "-"))


if __name__ == "__main__":
    main(sys.argv)
