"""Load, reconciliation and figures of the fault suite.

A `Load` runs N client threads against a gateway, each as its own customer
(own team). A client alternates creates and replies to its latest
acknowledged ticket (every fourth reply as an admin); every other request
carries an Idempotency-Key and is retried with the same key and body after a
503, 504 or connection error (at most MAX_TRIES attempts). Each logical
request has a unique marker in its description; every HTTP attempt is
recorded. `reconcile` reads back the tickets (and their `response` arrays) of
those teams and counts, per marker, how often the request was applied; with
the load's `streams` it also reconciles ticket.events against what is stored
and reports anything dead-lettered on ticket.dlq during the scenario.
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

from helpers.kafka import DLQ, EVENTS

MARKER_RE = re.compile(r"\bfm-[0-9a-f]{32}\b")

# Outcome classes of one attempt (HTTP statuses are ints).
REFUSED = "refused"          # TCP connect refused: never reached the gateway
CONN_ERROR = "conn-error"    # reset / aborted after sending: outcome unknown
TIMEOUT = "timeout"          # no answer within the client timeout (a hang)

CREATE = "create"
REPLY = "reply"
ADMIN_REPLY = "admin-reply"
# Outcomes after which a keyed request is sent again (same key, same body).
RETRYABLE = (503, 504, REFUSED, CONN_ERROR, TIMEOUT)
MAX_TRIES = 3

SUMMARY = []                 # one dict per scenario, printed at the end


@dataclass
class Attempt:
    client: int
    marker: str
    team: str
    started: float           # monotonic
    ended: float
    outcome: object          # int status, or REFUSED / CONN_ERROR / TIMEOUT
    ticket_id: str = None    # the ticket created, or replied to
    message: str = None
    kind: str = CREATE       # CREATE, REPLY or ADMIN_REPLY
    key: str = None          # Idempotency-Key, if sent
    try_no: int = 1          # 1 for the first attempt, 2.. for a retry with the same key
    reply_id: str = None     # the acknowledged reply's _id (replies)
    problem: str = None      # a 2xx whose body does not fit the request

    @property
    def result_id(self):
        """The id the answer named: the ticket of a create, the reply of a reply."""
        return self.ticket_id if self.kind == CREATE else self.reply_id

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


class Streams:
    """Taps on ticket.events and ticket.dlq from their end, opened before a
    scenario's load starts (needs the broker up)."""

    def __init__(self, kafka):
        self.events = kafka.tap(EVENTS)
        self.dlq = kafka.tap(DLQ)

    def close(self):
        self.events.close()
        self.dlq.close()


class Load:
    """`clients` threads, each sending creates and replies back to back (with
    `pace` seconds between its requests) until `stop()`. With `kafka`, the
    load opens `streams` (events, DLQ) for `reconcile`."""

    def __init__(self, base, tokens, label, clients=20, pace=0.05, timeout=20.0, kafka=None):
        self.base = base.rstrip("/")
        self.label = label
        self.users = [tokens.customer() for _ in range(clients)]
        self.admin = tokens.admin()
        self.pace = pace
        self.timeout = timeout
        self.streams = Streams(kafka) if kafka is not None else None
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

    def close(self):
        if self.streams is not None:
            self.streams.close()

    def reconcile(self, tickets_coll):
        return reconcile(tickets_coll, self.attempts, self.teams, streams=self.streams)

    def _send(self, session, method, path, token, body=None, key=None):
        """One request; returns (session, outcome, parsed body or None, message)."""
        headers = {"Authorization": "Bearer " + token}
        if key is not None:
            headers["Idempotency-Key"] = key
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
        acked_tickets = []
        step = 0
        try:
            while not self._stop.is_set():
                marker = "fm-" + uuid.uuid4().hex
                description = "load %s client %d %s" % (self.label, index, marker)
                key = marker if (step // 2) % 2 == 0 else None
                if acked_tickets and step % 2 == 1:
                    ticket_id = acked_tickets[-1]
                    kind = ADMIN_REPLY if step % 8 == 7 else REPLY
                    path = "/%s?id=%s" % ("admin-create-reply" if kind == ADMIN_REPLY
                                          else "create-reply", ticket_id)
                    token = self.admin.token if kind == ADMIN_REPLY else user.token
                    body = {"description": description}
                else:
                    ticket_id, kind, path, token = None, CREATE, "/create-ticket", user.token
                    body = {"category": "Fault", "subject": "fault %s" % self.label,
                            "description": description}
                for try_no in range(1, (MAX_TRIES if key else 1) + 1):
                    if try_no > 1:
                        self._stop.wait(self.pace)
                    session, attempt = self._attempt(session, index, user, marker, kind, path,
                                                     token, body, key, ticket_id, try_no)
                    if attempt.acked and kind == CREATE and attempt.ticket_id:
                        acked_tickets.append(attempt.ticket_id)
                    if attempt.outcome not in RETRYABLE or self._stop.is_set():
                        break
                step += 1
                self._stop.wait(self.pace)
        finally:
            session.close()

    def _attempt(self, session, index, user, marker, kind, path, token, body, key, ticket_id,
                 try_no):
        """Send one attempt of a logical request and record it."""
        started = time.monotonic()
        session, outcome, obj, message = self._send(session, "POST", path, token, body, key)
        reply_id = problem = None
        if isinstance(outcome, int) and 200 <= outcome < 300:
            try:
                data = obj["data"]
                if kind == CREATE:
                    ticket_id = data["_id"]
                    if data["description"] != body["description"]:
                        problem = "answered with another ticket: %r" % data
                else:
                    mine = [r["_id"] for r in data["response"]
                            if r["description"] == body["description"]]
                    reply_id = mine[0] if len(mine) == 1 else None
                    if data["_id"] != ticket_id or len(mine) != 1:
                        problem = "reply answered with %d matching entries on ticket %s" % (
                            len(mine), data["_id"])
            except (KeyError, TypeError):
                problem = "2xx without a ticket: %r" % (obj,)
        attempt = Attempt(index, marker, user.team, started, time.monotonic(), outcome,
                          ticket_id, message, kind, key, try_no, reply_id, problem)
        with self._lock:
            self.attempts.append(attempt)
        return session, attempt

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
    sent: int                          # HTTP attempts
    acked: int                         # 2xx attempts
    s504: int
    s503: int
    other: dict                        # any other outcome -> attempts
    stored: int                        # tickets of the load's teams
    lost: list
    duplicated: list
    mismatched: list
    unknown: list
    non_acked_applied: dict           # final outcome of a request never acked -> applied
    by_marker: dict = field(repr=False)   # marker -> stored ids (ticket or reply)
    replies: int = 0                   # replies stored on those tickets
    ops: dict = field(default_factory=dict)        # kind -> logical requests
    retried: int = 0                   # attempts that repeated an Idempotency-Key
    versions: list = field(default_factory=list)   # tickets whose __v != len(response)
    wrong_answers: list = field(default_factory=list)  # 2xx with a body that does not fit
    events_missing: list = field(default_factory=list)
    events_unexplained: list = field(default_factory=list)
    events_seen: int = None
    dead_letters: list = field(default_factory=list)

    def row(self):
        return {"sent": self.sent, "2xx": self.acked, "504": self.s504, "503": self.s503,
                "other": ", ".join("%s: %d" % kv for kv in sorted(self.other.items(), key=str))
                or "-",
                "stored": "%d+%dr" % (self.stored, self.replies),
                "retried": self.retried,
                "lost": len(self.lost),
                "duplicated": sum(n - 1 for _m, n in self.duplicated),
                "non-2xx applied": ", ".join("%s: %d" % kv for kv in
                                             sorted(self.non_acked_applied.items(), key=str))
                or "-",
                "events": "-" if self.events_seen is None else
                "%d (missing %d)" % (self.events_seen, len(self.events_missing)),
                "dlq": len(self.dead_letters)}

    def assert_clean(self, allowed_other=()):
        """Everything acknowledged applied exactly once, nothing applied twice,
        no status but 2xx/503/504 (and `allowed_other`), `__v` = number of
        replies, an event for every stored change and none for anything else,
        nothing dead-lettered."""
        problems = []
        unexpected = {k: n for k, n in self.other.items() if k not in allowed_other}
        if unexpected:
            problems.append("unexpected outcomes (only 2xx, 503, 504%s may appear): %r" % (
                "".join(", %s" % a for a in allowed_other), unexpected))
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
            problems.append("%d stored ticket(s)/replies without a marker we sent: %s"
                            % (len(self.unknown), self.unknown[:5]))
        if self.wrong_answers:
            problems.append("%d 2xx answer(s) that do not fit the request: %s"
                            % (len(self.wrong_answers), self.wrong_answers[:5]))
        if self.versions:
            problems.append("%d ticket(s) with __v != number of replies (id, __v, replies): %s"
                            % (len(self.versions), self.versions[:5]))
        if self.events_missing:
            problems.append("%d stored change(s) without an event on %s: %s"
                            % (len(self.events_missing), EVENTS, self.events_missing[:5]))
        if self.events_unexplained:
            problems.append("%d event(s) for changes that are not stored: %s"
                            % (len(self.events_unexplained), self.events_unexplained[:5]))
        if self.dead_letters:
            problems.append("%d message(s) dead-lettered on %s during the scenario (a valid "
                            "command must never be): %s"
                            % (len(self.dead_letters), DLQ, self.dead_letters[:3]))
        assert not problems, "; ".join(problems)


def stored_docs(tickets_coll, teams):
    return list(tickets_coll.find({"teamId": {"$in": list(teams)}},
                                  {"_id": 1, "description": 1, "teamId": 1, "response": 1,
                                   "__v": 1}))


def _marker(text):
    match = MARKER_RE.search(text or "")
    return match.group(0) if match else None


def stored_changes(docs):
    """(marker -> [stored ids], ids without a marker, replies stored)."""
    by_marker = collections.defaultdict(list)
    unmarked = []
    replies = 0
    for doc in docs:
        items = [(str(doc["_id"]), doc.get("description"))]
        for entry in doc.get("response") or []:
            replies += 1
            items.append((str(entry.get("_id")), entry.get("description")))
        for oid, text in items:
            marker = _marker(text)
            if marker is None:
                unmarked.append(oid)
            else:
                by_marker[marker].append(oid)
    return by_marker, unmarked, replies


def expected_event_ids(docs):
    """eventId of every change stored on these tickets (docs/contract.md)."""
    ids = set()
    for doc in docs:
        ids.add("created:%s" % doc["_id"])
        for entry in doc.get("response") or []:
            ids.add("replied:%s" % entry.get("_id"))
    return ids


def _event_ids(tap, teams):
    seen = set()
    for msg in tap.messages:
        obj = msg.try_json()
        if isinstance(obj, dict) and obj.get("teamId") in teams and obj.get("eventId"):
            seen.add(obj["eventId"])
    return seen


def reconcile(tickets_coll, attempts, teams, streams=None, events_timeout=30.0):
    """Reconcile the attempts against the database (and, with `streams`,
    against ticket.events and ticket.dlq). An Idempotency-Key retry is the
    same logical request as its first attempt (same marker)."""
    ops = collections.defaultdict(list)
    for a in attempts:
        ops[a.marker].append(a)
    docs = stored_docs(tickets_coll, teams)
    by_marker, unmarked, replies = stored_changes(docs)
    unknown = unmarked + [ids for m, ids in by_marker.items() if m not in ops]
    lost, mismatched, duplicated, wrong = [], [], [], []
    applied = collections.Counter()
    for marker, tries in ops.items():
        ids = by_marker.get(marker, [])
        acked = [t for t in tries if t.acked]
        if len(ids) > 1:
            duplicated.append((marker, len(ids)))
        wrong.extend((marker, t.kind, t.problem) for t in acked if t.problem)
        if acked:
            if not ids:
                lost.append((marker, tries[0].kind, acked[0].result_id))
            elif any(t.result_id not in ids for t in acked):
                mismatched.append((marker, tries[0].kind, [t.result_id for t in acked], ids))
        elif ids:
            applied[tries[-1].outcome] += 1
    versions = [(str(d["_id"]), d.get("__v"), len(d.get("response") or [])) for d in docs
                if d.get("__v") != len(d.get("response") or [])]
    c = counts(attempts)
    acked_n = sum(n for k, n in c.items() if isinstance(k, int) and 200 <= k < 300)
    other = {k: n for k, n in c.items()
             if not (isinstance(k, int) and (200 <= k < 300 or k in (503, 504)))}
    rec = Reconciliation(len(attempts), acked_n, c.get(504, 0), c.get(503, 0), other,
                         len(docs), lost, duplicated, mismatched, unknown, dict(applied),
                         dict(by_marker), replies=replies,
                         ops=dict(collections.Counter(t[0].kind for t in ops.values())),
                         retried=sum(1 for a in attempts if a.try_no > 1),
                         versions=versions, wrong_answers=wrong)
    if streams is not None:
        team_set = set(teams)
        expected = expected_event_ids(docs)
        deadline = time.monotonic() + events_timeout
        while True:
            streams.events.poll(0.5)
            seen = _event_ids(streams.events, team_set)
            if expected <= seen or time.monotonic() > deadline:
                break
        streams.dlq.poll(0.5)
        rec.events_seen = len(seen)
        rec.events_missing = sorted(expected - seen)
        rec.events_unexplained = sorted(seen - expected)
        rec.dead_letters = [(m.try_json() or {}).get("reason", repr(m))
                            for m in streams.dlq.messages]
    return rec


def settle(tickets_coll, attempts, teams, timeout=60.0, quiet=3.0, need=None):
    """Wait until every acknowledged request (and every marker in `need`) is
    stored and the number of stored tickets and replies has not changed for
    `quiet` seconds; bounded by `timeout`. Returns the seconds waited."""
    started = time.monotonic()
    acked = {a.marker for a in attempts if a.acked}
    need = set(need or ()) | acked
    last = None
    stable_since = time.monotonic()
    while True:
        by_marker, unmarked, replies = stored_changes(stored_docs(tickets_coll, teams))
        size = sum(len(ids) for ids in by_marker.values()) + len(unmarked)
        if size != last:
            last = size
            stable_since = time.monotonic()
        now = time.monotonic()
        if need <= set(by_marker) and now - stable_since >= quiet:
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
    keys = ("sent", "2xx", "504", "503", "other", "stored", "retried", "lost", "duplicated",
            "non-2xx applied", "events", "dlq", "runtime")
    text = " / ".join("%s %s" % (k, row.get(k, "-")) for k in keys)
    if row.get("figures"):
        text += "; " + ", ".join("%s %s" % kv for kv in row["figures"].items())
    return text


def summary_markdown(total_seconds, outcome):
    lines = ["# Fault suite (`./dev test --faults`)", "",
             "Run %s, %s in %.0f s." % (dt.datetime.now(dt.timezone.utc)
                                         .strftime("%Y-%m-%d %H:%M UTC"), outcome, total_seconds),
             "",
             "| scenario | sent | 2xx | 504 | 503 | other | stored | retried | lost | duplicated "
             "| non-2xx applied | events | dlq | runtime |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in SUMMARY:
        lines.append("| %s |" % " | ".join(str(row.get(k, "-")) for k in (
            "scenario", "sent", "2xx", "504", "503", "other", "stored", "retried", "lost",
            "duplicated", "non-2xx applied", "events", "dlq", "runtime")))
    lines.append("")
    for row in SUMMARY:
        if row.get("figures"):
            lines.append("- **%s**: %s" % (row["scenario"], ", ".join(
                "%s %s" % kv for kv in row["figures"].items())))
    lines.append("")
    lines.append("`sent` counts HTTP attempts (creates and replies); `stored` the tickets "
                 "(+ replies) of the load's teams; `retried` the attempts that repeated an "
                 "Idempotency-Key after a 503, 504 or connection error; `non-2xx applied` "
                 "the requests never acknowledged that were applied (at most once each), by "
                 "their last outcome; `events` the ticket.events seen for those teams (one "
                 "per stored change expected); `dlq` the messages dead-lettered during the "
                 "scenario (must be 0).")
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
