"""Fault 7 (issue 8, defect 1): the database stalls (FerretDB stopped with
SIGSTOP) while replies are being applied, and a second worker joins. The
first worker's revoke drain times out while its lanes still hold queued
replies and retry loops; those partitions must be fenced (queued messages
purged, retries ended, no write started) so the new owner is the only
writer. Then reconcile: every reply stored exactly once and each ticket's
`__v` equal to its number of replies.
"""

import os
import signal
import time
import uuid

from bson import ObjectId

from helpers.kafka import COMMANDS, create_command, new_id, reply_command
from helpers.wait import wait_until

from faultlib import record

TICKETS = 16
REPLIES_PER_TICKET = 12
SESSION_TIMEOUT_S = 6   # the workers' session.timeout.ms
STALL_S = 26            # > worker 1's rejoin + the first worker's 10 s revoke drain + its fence wait


def ferretdb_pid(run_dir):
    """The test stack's FerretDB (scripts/stack.sh keeps its pid in the run dir)."""
    with open(os.path.join(run_dir, "ferretdb.pid")) as f:
        return int(f.read().strip())


class Stalled:
    """SIGSTOP a process; SIGCONT on leaving, whatever happens inside."""

    def __init__(self, pid):
        self.pid = pid
        self.stopped_at = None

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped_at = time.monotonic()
        return self

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)
        return False


def reply_ids_of(doc):
    return [str(entry["_id"]) for entry in doc.get("response", [])]


def test_slow_database_while_a_worker_joins(fault_stack, config, kafka, tickets_coll):
    stack = fault_stack
    t_start = time.monotonic()
    team = "faults-fence-" + uuid.uuid4().hex[:12]
    first, second = stack.workers
    # A joining worker must have met the database before it subscribes, so
    # the joiner is one that was in the group already: frozen (SIGSTOP) until
    # the group drops it, it rejoins once thawed, while the database stalls.
    since = first.log_size()
    second.popen.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: first.count_msg("partitions assigned", since) > 0, 30 + SESSION_TIMEOUT_S,
                   "the first worker took the frozen worker's partitions")
    except BaseException:
        second.popen.send_signal(signal.SIGCONT)
        raise

    ticket_ids = [new_id() for _ in range(TICKETS)]
    kafka.produce_many([(COMMANDS, create_command(tid, team, subject="fence %d" % i), tid, None, None)
                        for i, tid in enumerate(ticket_ids)])
    wait_until(lambda: tickets_coll.count_documents({"teamId": team}) == TICKETS, 60,
               "the tickets stored")

    expected = {tid: [] for tid in ticket_ids}
    items = []
    for round_ in range(REPLIES_PER_TICKET):
        for tid in ticket_ids:
            rid = new_id()
            expected[tid].append(rid)
            items.append((COMMANDS, reply_command(tid, rid, role="admin",
                                                  description="reply %d" % round_), tid, None, None))
    figures = {}
    pid = ferretdb_pid(config.stack_run)
    kafka.produce_many(items[:len(items) // 4])
    since = first.log_size()
    with Stalled(pid) as stall:
        try:
            # Replies in flight and queued behind a stalled database ...
            kafka.produce_many(items[len(items) // 4:])
            time.sleep(1)
        finally:
            # ... while the second worker (re)joins the group.
            second.popen.send_signal(signal.SIGCONT)
        wait_until(lambda: first.count_msg("partitions revoked", since) > 0, 60,
                   "the first worker gave its partitions up")
        time.sleep(max(0.0, STALL_S - (time.monotonic() - stall.stopped_at)))
        figures["stalled"] = "%.1f s" % (time.monotonic() - stall.stopped_at)
    drain_timed_out = first.count_msg("revoke drain timed out, fencing the partitions", since)

    def all_stored():
        docs = list(tickets_coll.find({"teamId": team}))
        return len(docs) == TICKETS and all(len(d.get("response", [])) >= REPLIES_PER_TICKET for d in docs)

    wait_until(all_stored, 120, "every reply stored")
    time.sleep(3)   # a late duplicate write would land now
    docs = {str(d["_id"]): d for d in tickets_coll.find({"teamId": team})}

    duplicated, lost, wrong_v = [], [], []
    for tid, want in expected.items():
        got = reply_ids_of(docs[tid])
        if len(got) != len(set(got)):
            duplicated.append((tid, len(got) - len(set(got))))
        missing = set(want) - set(got)
        if missing:
            lost.append((tid, len(missing)))
        if docs[tid]["__v"] != len(got):
            wrong_v.append((tid, docs[tid]["__v"], len(got)))

    fenced = sum(w.count_msg("partition revoked, message left to its next owner")
                 for w in stack.workers)
    purged = sum(w.count_msg("queued messages of revoked partitions dropped") for w in stack.workers)
    figures.update({"replies": "%d on %d tickets" % (len(items), TICKETS),
                    "revoke drains timed out": str(drain_timed_out),
                    "fenced retries": str(fenced), "purges": str(purged)})
    record("7. database stalled (SIGSTOP) while a worker joins", _Row(len(items), duplicated, lost),
           time.monotonic() - t_start, **figures)

    for proc in [stack.gateway] + stack.workers:
        assert proc.alive, "died: " + proc.describe()
    # The scenario happened: the revoke found work it could not finish.
    assert drain_timed_out > 0, "the revoke drain never timed out: " + first.describe(60)
    assert not duplicated, "replies stored twice: %r" % duplicated
    assert not lost, "replies never stored: %r" % lost
    assert not wrong_v, "__v differs from the number of replies (ticket, __v, replies): %r" % wrong_v
    for tid in ticket_ids:
        assert tickets_coll.count_documents({"_id": ObjectId(tid)}) == 1


class _Row:
    """What faultlib.record needs of a reconciliation, for a scenario of replies."""

    def __init__(self, sent, duplicated, lost):
        self._row = {"sent": sent, "2xx": "-", "504": "-", "503": "-", "other": "-",
                     "stored": sent - sum(n for _t, n in lost), "lost": sum(n for _t, n in lost),
                     "duplicated": sum(n for _t, n in duplicated), "non-2xx applied": "-"}

    def row(self):
        return self._row
