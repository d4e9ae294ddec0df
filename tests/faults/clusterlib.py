"""A three-broker Kafka cluster for the fault suite, and a load that both
creates tickets and replies to them.

`KafkaCluster` starts (scripts/stackctl.sh start-cluster) three combined
broker+controller nodes kafka-1..3 in the run dir of the suite's stack,
beside its single broker, on free ports; topics have 3 replicas and
min.insync.replicas 2. `MixedLoad` is faultlib's Load whose clients
alternate: create a ticket, then reply to their latest acknowledged ticket,
each with a unique marker; `reconcile_mixed` counts every marker in the
database (ticket descriptions and reply descriptions) against the answers.
"""

import collections
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass

import requests
from confluent_kafka.admin import AdminClient

import faultlib
from faultlib import MARKER_RE, Attempt, Load, percentile

COMMANDS = "ticket.commands"


class KafkaCluster:
    """The nodes kafka-1..3 of RUN_DIR (see scripts/stack.sh, cluster mode)."""

    def __init__(self, stackctl, run_dir):
        self.stackctl = stackctl
        self.run_dir = run_dir
        self.bootstrap = None
        self._admin = None

    def start(self):
        started = time.monotonic()
        out = self._ctl_output("start-cluster")
        self.bootstrap = out.strip().splitlines()[-1]
        assert self.bootstrap.count(",") == 2, "start-cluster printed %r" % out
        self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})
        return time.monotonic() - started

    def stop(self):
        self.stackctl("stop-cluster")

    def _ctl_output(self, command):
        proc = subprocess.run([self.stackctl.script, self.run_dir, command], capture_output=True,
                              text=True, timeout=240)
        assert proc.returncode == 0, "stackctl %s failed (rc %d):\n%s%s" % (
            command, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout

    def leader(self, topic=COMMANDS, partition=0):
        """Node id of the leader of topic-partition (from the metadata)."""
        meta = self._admin.list_topics(topic, timeout=10)
        return meta.topics[topic].partitions[partition].leader

    def leaders(self, topic=COMMANDS):
        meta = self._admin.list_topics(topic, timeout=10)
        return {p: m.leader for p, m in sorted(meta.topics[topic].partitions.items())}

    def pid(self, node):
        """Pid of kafka-NODE, checked to be this run dir's (as stk_alive does)."""
        name = "kafka-%d" % node
        with open(os.path.join(self.run_dir, name + ".pid")) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        assert ("TICKET_RUN_DIR=%s" % self.run_dir).encode() in env, \
            "pid %d of %s is not ours" % (pid, name)
        return pid

    def kill(self, node):
        """SIGKILL to the process group of kafka-NODE (a crash); returns the
        monotonic time of the signal once the process is gone."""
        pid = self.pid(node)
        killed_at = time.monotonic()
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return killed_at
            time.sleep(0.02)
        raise AssertionError("kafka-%d (pid %d) survived SIGKILL" % (node, pid))

    def restart(self, node):
        """Start kafka-NODE again; returns once every replica is in sync."""
        return self.stackctl("start-kafka-%d" % node, timeout=240)

    def close(self):
        self._admin = None


@dataclass
class MixedAttempt(Attempt):
    kind: str = "create"         # "create" or "reply"
    target: str = None           # the ticket a reply was for
    problem: str = None          # a 2xx whose body is not what was asked for


class MixedLoad(Load):
    """Clients alternate between creating a ticket and replying to their
    latest acknowledged one (as its customer), with a marker in each."""

    def _client(self, index, user):
        session = requests.Session()
        last_ticket = None
        want_reply = False
        try:
            while not self._stop.is_set():
                marker = "fm-" + uuid.uuid4().hex
                kind = "reply" if (want_reply and last_ticket) else "create"
                want_reply = not want_reply
                if kind == "create":
                    path = "/create-ticket"
                    body = {"category": "Fault", "subject": "fault %s" % self.label,
                            "description": "load %s client %d %s" % (self.label, index, marker)}
                else:
                    path = "/create-reply?id=" + last_ticket
                    body = {"description": "reply %s client %d %s" % (self.label, index, marker)}
                started = time.monotonic()
                session, outcome, obj, message = self._send(session, "POST", path, user.token, body)
                ticket_id = problem = None
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    try:
                        ticket_id = obj["data"]["_id"]
                        if kind == "create":
                            if obj["data"]["description"] != body["description"]:
                                problem = "answered with another ticket: %r" % obj["data"]
                            last_ticket = ticket_id
                        elif not any(r.get("description") == body["description"]
                                     for r in obj["data"]["response"]):
                            problem = "reply answered without the reply: %r" % obj["data"]
                    except (KeyError, TypeError, AttributeError):
                        problem = "2xx without a ticket: %r" % (obj,)
                with self._lock:
                    # By name: Attempt (faultlib) has more fields than when this was written.
                    self.attempts.append(MixedAttempt(
                        index, marker, user.team, started, time.monotonic(), outcome, ticket_id=ticket_id,
                        message=message, kind=kind, target=last_ticket if kind == "reply" else None,
                        problem=problem))
                self._stop.wait(self.pace)
        finally:
            session.close()


def _reply_markers(tickets_coll, teams):
    """marker -> [(ticket id, __v, reply count)] over the replies stored for `teams`."""
    found = collections.defaultdict(list)
    bad_versions = []
    for doc in tickets_coll.find({"teamId": {"$in": list(teams)}},
                                 {"_id": 1, "response": 1, "__v": 1}):
        replies = doc.get("response") or []
        if doc.get("__v") != len(replies):
            bad_versions.append((str(doc["_id"]), doc.get("__v"), len(replies)))
        for reply in replies:
            match = MARKER_RE.search(reply.get("description") or "")
            if match:
                found[match.group(0)].append(str(doc["_id"]))
    return found, bad_versions


def settle_mixed(tickets_coll, attempts, teams, timeout=60.0):
    """faultlib.settle for the creates, then until every acknowledged reply
    is stored (bounded by `timeout`). Returns the seconds waited."""
    started = time.monotonic()
    creates = [a for a in attempts if a.kind == "create"]
    faultlib.settle(tickets_coll, creates, teams, timeout=timeout)
    want = {a.marker for a in attempts if a.kind == "reply" and a.acked}
    while time.monotonic() - started < timeout:
        found, _ = _reply_markers(tickets_coll, teams)
        if want <= set(found):
            break
        time.sleep(0.5)
    return time.monotonic() - started


def reconcile_mixed(tickets_coll, attempts, teams):
    """faultlib.reconcile over the creates, extended with the replies: the
    returned Reconciliation counts both; a reply is lost when acknowledged
    and not stored, duplicated when stored twice. Also checks that `__v`
    equals the number of replies of every ticket (`bad_versions`)."""
    creates = [a for a in attempts if a.kind == "create"]
    replies = [a for a in attempts if a.kind == "reply"]
    rec = faultlib.reconcile(tickets_coll, creates, teams)
    # faultlib also reads the stored replies; this load's replies are
    # reconciled below, so only markers nobody sent stay unknown.
    by_marker, _, _ = faultlib.stored_changes(faultlib.stored_docs(tickets_coll, teams))
    ours = [by_marker[a.marker] for a in replies if a.marker in by_marker]
    rec.unknown = [ids for ids in rec.unknown if ids not in ours]
    found, bad_versions = _reply_markers(tickets_coll, teams)
    applied = collections.Counter(rec.non_acked_applied)
    for a in replies:
        where = found.get(a.marker, [])
        if len(where) > 1:
            rec.duplicated.append((a.marker, len(where)))
        if a.acked and not where:
            rec.lost.append((a.marker, "reply to %s" % a.target))
        elif a.acked and where[0] != a.target:
            rec.mismatched.append((a.marker, a.target, where))
        elif not a.acked and where:
            applied[a.outcome] += 1
    c = faultlib.counts(replies)
    rec.sent += len(replies)
    rec.acked += sum(n for k, n in c.items() if isinstance(k, int) and 200 <= k < 300)
    rec.s503 += c.get(503, 0)
    rec.s504 += c.get(504, 0)
    for k, n in c.items():
        if not (isinstance(k, int) and (200 <= k < 300 or k in (503, 504))):
            rec.other[k] = rec.other.get(k, 0) + n
    rec.non_acked_applied = dict(applied)
    rec.bad_versions = bad_versions
    rec.replies_sent = len(replies)
    rec.replies_acked = sum(1 for a in replies if a.acked)
    return rec


def p99_series(attempts, origin, start, end, step=1.0):
    """[(t, n, p99 seconds)] of the latency of answered requests started in
    [origin+t, origin+t+step) for t from `start` to `end` (seconds)."""
    out = []
    t = start
    while t < end:
        values = [a.latency for a in attempts if isinstance(a.outcome, int)
                  and origin + t <= a.started < origin + t + step]
        out.append((t, len(values), percentile(values, 99)))
        t += step
    return out


def p99_between(attempts, lo, hi, ended_before=None):
    """(p99 seconds, n) of the answered requests started in [lo, hi) (and,
    with `ended_before`, answered before it); monotonic times."""
    values = [a.latency for a in attempts if isinstance(a.outcome, int) and lo <= a.started < hi
              and (ended_before is None or a.ended < ended_before)]
    return percentile(values, 99), len(values)
