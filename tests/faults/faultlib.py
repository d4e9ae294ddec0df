"""Load, reconciliation and figures of the fault suite.

A `Load` runs N client threads against a gateway, each creating tickets as
its own customer (own team) with a unique marker in every description, and
records every attempt. `reconcile` reads back the documents of those teams
and counts, per marker, how often the request was applied.
"""

import collections
import datetime as dt
import json
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

MARKER_RE = re.compile(r"\bfm-[0-9a-f]{32}\b")

# Outcome classes of one attempt (HTTP statuses are ints).
REFUSED = "refused"          # TCP connect refused: never reached the gateway
CONN_ERROR = "conn-error"    # reset / aborted after sending: outcome unknown
TIMEOUT = "timeout"          # no answer within the client timeout (a hang)

SUMMARY = []                 # one dict per scenario, printed at the end


@dataclass
class Attempt:
    client: int
    marker: str
    team: str
    started: float           # monotonic
    ended: float
    outcome: object          # int status, or REFUSED / CONN_ERROR / TIMEOUT
    ticket_id: str = None
    message: str = None

    @property
    def latency(self):
        return self.ended - self.started

    @property
    def acked(self):
        return isinstance(self.outcome, int) and 200 <= self.outcome < 300


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def ms(seconds):
    return "-" if seconds is None else "%.0f ms" % (seconds * 1000)


class Load:
    """`clients` threads, each POSTing /create-ticket back to back (with
    `pace` seconds between its requests) until `stop()`."""

    def __init__(self, base, tokens, label, clients=20, pace=0.05, timeout=20.0):
        self.base = base.rstrip("/")
        self.label = label
        self.users = [tokens.customer() for _ in range(clients)]
        self.pace = pace
        self.timeout = timeout
        self.attempts = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.t0 = None

    @property
    def teams(self):
        return [u.team for u in self.users]

    def start(self):
        self.t0 = time.monotonic()
        for index, user in enumerate(self.users):
            thread = threading.Thread(target=self._client, args=(index, user),
                                      name="load-%s-%d" % (self.label, index), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def elapsed(self):
        return time.monotonic() - self.t0

    def sleep_until(self, at):
        """Sleep until `at` seconds after the start of the load."""
        delay = self.t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def stop(self):
        self._stop.set()
        deadline = time.monotonic() + self.timeout + 10
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        assert not stuck, "load threads did not finish: %s" % stuck
        return self

    def _send(self, session, method, path, token, body=None):
        """One request; returns (session, outcome, parsed body or None, message)."""
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        obj = message = None
        try:
            resp = session.request(method, self.base + path, data=data, headers=headers,
                                   timeout=self.timeout)
            outcome = resp.status_code
            try:
                obj = resp.json()
                message = obj.get("message")
            except (ValueError, AttributeError) as exc:
                message = "unparsable body (%r): %r" % (exc, resp.text[:200])
        except requests.Timeout:
            outcome = TIMEOUT
        except requests.ConnectionError as exc:
            text = repr(exc)
            outcome = REFUSED if ("Connection refused" in text or "Errno 111" in text) \
                else CONN_ERROR
            message = text[:300]
            session.close()
            session = requests.Session()
        return session, outcome, obj, message

    def _client(self, index, user):
        session = requests.Session()
        try:
            while not self._stop.is_set():
                marker = "fm-" + uuid.uuid4().hex
                body = {"category": "Fault", "subject": "fault %s" % self.label,
                        "description": "load %s client %d %s" % (self.label, index, marker)}
                started = time.monotonic()
                session, outcome, obj, message = self._send(session, "POST", "/create-ticket",
                                                            user.token, body)
                ticket_id = None
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    try:
                        ticket_id = obj["data"]["_id"]
                        if obj["data"]["description"] != body["description"]:
                            message = "answered with another ticket: %r" % obj["data"]
                    except (KeyError, TypeError):
                        message = "2xx without a ticket: %r" % (obj,)
                with self._lock:
                    self.attempts.append(Attempt(index, marker, user.team, started,
                                                 time.monotonic(), outcome, ticket_id, message))
                self._stop.wait(self.pace)
        finally:
            session.close()

    def snapshot(self):
        with self._lock:
            return list(self.attempts)

    def between(self, start, end):
        """Attempts started between `start` and `end` s after the load start."""
        return [a for a in self.snapshot()
                if start <= a.started - self.t0 < end]

    def first_ack_after(self, at):
        """Seconds after `at` (load time) until the first 2xx of a request
        started after `at`; None if none."""
        oks = [a.ended - self.t0 for a in self.snapshot()
               if a.acked and a.started - self.t0 >= at]
        return (min(oks) - at) if oks else None


def counts(attempts):
    return collections.Counter(a.outcome for a in attempts)


@dataclass
class Reconciliation:
    sent: int
    acked: int
    s504: int
    s503: int
    other: dict
    stored: int
    lost: list
    duplicated: list
    mismatched: list
    unknown: list
    non_acked_applied: dict           # outcome -> how many were applied anyway
    by_marker: dict = field(repr=False)

    def row(self):
        return {"sent": self.sent, "2xx": self.acked, "504": self.s504, "503": self.s503,
                "other": ", ".join("%s: %d" % kv for kv in sorted(self.other.items(), key=str))
                or "-",
                "stored": self.stored, "lost": len(self.lost),
                "duplicated": sum(n - 1 for _m, n in self.duplicated),
                "non-2xx applied": ", ".join("%s: %d" % kv for kv in
                                             sorted(self.non_acked_applied.items(), key=str))
                or "-"}

    def assert_clean(self):
        problems = []
        if self.lost:
            problems.append("%d acknowledged request(s) not in the database: %s"
                            % (len(self.lost), self.lost[:5]))
        if self.duplicated:
            problems.append("%d request(s) applied more than once: %s"
                            % (len(self.duplicated), self.duplicated[:5]))
        if self.mismatched:
            problems.append("%d acknowledged id(s) differ from the stored one: %s"
                            % (len(self.mismatched), self.mismatched[:5]))
        if self.unknown:
            problems.append("%d stored ticket(s) without a marker we sent: %s"
                            % (len(self.unknown), self.unknown[:5]))
        assert not problems, "; ".join(problems)


def stored_docs(tickets_coll, teams):
    return list(tickets_coll.find({"teamId": {"$in": list(teams)}},
                                  {"_id": 1, "description": 1, "teamId": 1}))


def reconcile(tickets_coll, attempts, teams):
    sent_markers = {a.marker: a for a in attempts}
    by_marker = collections.defaultdict(list)
    unknown = []
    docs = stored_docs(tickets_coll, teams)
    for doc in docs:
        match = MARKER_RE.search(doc.get("description") or "")
        if match is None or match.group(0) not in sent_markers:
            unknown.append(str(doc["_id"]))
            continue
        by_marker[match.group(0)].append(str(doc["_id"]))
    lost, mismatched, duplicated = [], [], []
    applied = collections.Counter()
    for a in attempts:
        ids = by_marker.get(a.marker, [])
        if len(ids) > 1:
            duplicated.append((a.marker, len(ids)))
        if a.acked:
            if not ids:
                lost.append((a.marker, a.ticket_id))
            elif a.ticket_id not in ids:
                mismatched.append((a.marker, a.ticket_id, ids))
        elif ids:
            applied[a.outcome] += 1
    c = counts(attempts)
    acked = sum(n for k, n in c.items() if isinstance(k, int) and 200 <= k < 300)
    other = {k: n for k, n in c.items()
             if not (isinstance(k, int) and (200 <= k < 300 or k in (503, 504)))}
    return Reconciliation(len(attempts), acked, c.get(504, 0), c.get(503, 0), other, len(docs),
                          lost, duplicated, mismatched, unknown, dict(applied), dict(by_marker))


def settle(tickets_coll, attempts, teams, timeout=60.0, quiet=3.0, need=None):
    """Wait until every acknowledged request (and every marker in `need`) is
    stored and the number of stored documents has not changed for `quiet`
    seconds; bounded by `timeout`. Returns the seconds waited."""
    started = time.monotonic()
    acked = {a.marker for a in attempts if a.acked}
    need = set(need or ()) | acked
    last = None
    stable_since = time.monotonic()
    while True:
        docs = stored_docs(tickets_coll, teams)
        present = set()
        for doc in docs:
            match = MARKER_RE.search(doc.get("description") or "")
            if match:
                present.add(match.group(0))
        if len(docs) != last:
            last = len(docs)
            stable_since = time.monotonic()
        now = time.monotonic()
        if need <= present and now - stable_since >= quiet:
            return now - started
        if now - started > timeout:
            return now - started  # reconcile reports what is missing
        time.sleep(0.5)


def vm_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of a pid every `interval` s in a thread."""

    def __init__(self, pid, interval=0.25):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-%d" % pid)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            value = vm_rss_kib(self.pid)
            if value is not None:
                self.samples.append((time.monotonic(), value))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self

    def max_kib(self, since=None):
        values = [v for t, v in self.samples if since is None or t >= since]
        return max(values) if values else None


class ReadyWatch:
    """Polls GET /readyz of a worker's WORKER_HTTP_PORT every `interval` s."""

    def __init__(self, url, interval=0.2):
        self.url = url
        self.interval = interval
        self.samples = []            # (monotonic, status or None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ready")

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                status = requests.get(self.url, timeout=1).status_code
            except requests.RequestException:
                status = None
            self.samples.append((time.monotonic(), status))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self

    def statuses(self, start, end):
        return [s for t, s in self.samples if start <= t < end]

    def first(self, status, after):
        for t, s in self.samples:
            if t >= after and s == status:
                return t
        return None


class StackCtl:
    """scripts/stackctl.sh on the test stack's run dir."""

    def __init__(self, script, run_dir):
        self.script = script
        self.run_dir = run_dir

    def __call__(self, command, timeout=150):
        started = time.monotonic()
        proc = subprocess.run([self.script, self.run_dir, command], capture_output=True,
                              text=True, timeout=timeout)
        took = time.monotonic() - started
        assert proc.returncode == 0, "stackctl %s failed (rc %d) after %.1f s:\n%s%s" % (
            command, proc.returncode, took, proc.stdout, proc.stderr)
        return took

    def status(self):
        proc = subprocess.run([self.script, self.run_dir, "status"], capture_output=True,
                              text=True, timeout=30)
        out = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                out[parts[0]] = parts[2] == "up"
        return out

    def ensure_up(self):
        state = self.status()
        if not state.get("kafka"):
            self("start-kafka")
        if not state.get("ferretdb"):
            self("start-ferretdb")


def latency_figures(attempts, outcome):
    values = [a.latency for a in attempts if a.outcome == outcome]
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values) if values else None}


def record(scenario, rec, runtime, **figures):
    """Add a scenario's line to the summary (and print it at once)."""
    row = {"scenario": scenario}
    row.update(rec.row() if rec is not None else {})
    row["runtime"] = "%.0f s" % runtime
    row["figures"] = figures
    SUMMARY.append(row)
    print("\n[faults] %s: %s" % (scenario, format_row(row)))
    return row


def format_row(row):
    keys = ("sent", "2xx", "504", "503", "other", "stored", "lost", "duplicated",
            "non-2xx applied", "runtime")
    text = " / ".join("%s %s" % (k, row.get(k, "-")) for k in keys)
    if row.get("figures"):
        text += "; " + ", ".join("%s %s" % kv for kv in row["figures"].items())
    return text


def summary_markdown(total_seconds, outcome):
    lines = ["# Fault suite (`./dev test --faults`)", "",
             "Run %s, %s in %.0f s." % (dt.datetime.now(dt.timezone.utc)
                                         .strftime("%Y-%m-%d %H:%M UTC"), outcome, total_seconds),
             "",
             "| scenario | sent | 2xx | 504 | 503 | other | stored | lost | duplicated "
             "| non-2xx applied | runtime |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in SUMMARY:
        lines.append("| %s |" % " | ".join(str(row.get(k, "-")) for k in (
            "scenario", "sent", "2xx", "504", "503", "other", "stored", "lost", "duplicated",
            "non-2xx applied", "runtime")))
    lines.append("")
    for row in SUMMARY:
        if row.get("figures"):
            lines.append("- **%s**: %s" % (row["scenario"], ", ".join(
                "%s %s" % kv for kv in row["figures"].items())))
    lines.append("")
    lines.append("`stored` counts the documents of the load's teams; `non-2xx applied` counts "
                 "requests answered otherwise (504, 503, connection error) that were applied "
                 "(at most once each).")
    return "\n".join(lines) + "\n"


def write_summary(path, total_seconds, outcome):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = summary_markdown(total_seconds, outcome)
    with open(path, "w") as f:
        f.write(text)
    return text


class Phase:
    """The fault phase of a scenario. An AssertionError raised inside is kept
    instead of propagated, so that the scenario still reconciles and records
    its figures; `reraise()` then raises it."""

    def __init__(self):
        self.error = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, AssertionError):
            self.error = exc
            return True
        return False

    def note(self):
        return {"FAILED during the fault": str(self.error).splitlines()[0][:200]} \
            if self.error else {}

    def reraise(self):
        if self.error is not None:
            raise self.error
