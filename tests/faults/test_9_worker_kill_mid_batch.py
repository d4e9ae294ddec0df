"""Fault 8: a worker killed (SIGKILL) in the middle of a batch (group commit,
issue 11): nothing lost, nothing duplicated.

A closed-loop load keeps the lanes' queues full (so they apply batches), and a
burst of creates, then one reply to each, from "another service" lands on
every partition at once; the first worker is killed while it applies them.
Its batches were written in part (insertMany, the replies' one update),
answered in part, with offsets stored for none of the unanswered: the
survivor (and the restarted worker) repeat them, insertMany's duplicate keys
and the replies already stored are answered as repeats, and every ticket and
every reply exists exactly once.
"""

import time

from bson import ObjectId

from helpers.kafka import COMMANDS, create_command, new_id, probe_all_partitions, reply_command

from faultlib import TIMEOUT, Load, Phase, latency_figures, ms, record, settle

BURST = 400


def test_worker_sigkill_mid_batch(fault_stack, tokens, tickets_coll, kafka):
    stack = fault_stack
    t_start = time.monotonic()
    load = Load(stack.gateway.base, tokens, "batch-kill", clients=30, pace=0.0, kafka=kafka).start()
    owner = tokens.customer()
    burst_ids = [new_id() for _ in range(BURST)]
    reply_ids = {tid: new_id() for tid in burst_ids}
    figures = {}
    phase = Phase()
    try:
        with phase:
            load.sleep_until(3)
            kafka.produce_many([(COMMANDS, create_command(tid, owner.team, actor_id=owner.sub), tid, None, None)
                                for tid in burst_ids] +
                               [(COMMANDS, reply_command(tid, reply_ids[tid], team=owner.team, actor_id=owner.sub),
                                 tid, None, None) for tid in burst_ids])
            victim = stack.workers[0]
            killed = time.monotonic()
            victim.kill()  # while its lanes hold the burst's batches
            figures["killed at"] = "%.1f s" % load.elapsed()
            probe_all_partitions(kafka, timeout=45)
            figures["takeover"] = "%.1f s" % (time.monotonic() - killed)
            load.sleep_until(max(load.elapsed(), 8))
            stack.restart_worker(0)
            load.sleep_until(max(load.elapsed() + 3, 12))
    finally:
        load.stop()
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60, need=None)
    rec = load.reconcile(tickets_coll)
    load.close()
    deadline = time.monotonic() + 60
    while tickets_coll.count_documents({"teamId": owner.team}) < BURST and time.monotonic() < deadline:
        time.sleep(0.5)
    replied = {tid: 0 for tid in burst_ids}
    while sum(replied.values()) < BURST and time.monotonic() < deadline:
        replied = {str(d["_id"]): len(d["response"]) for d in tickets_coll.find({"teamId": owner.team})}
        time.sleep(0.5)
    stored = {str(d["_id"]) for d in tickets_coll.find({"teamId": owner.team}, {"_id": 1})}
    lat = latency_figures(load.attempts, 201)
    figures.update({"2xx p50": ms(lat["p50"]), "2xx p99": ms(lat["p99"]),
                    "settled after load": "%.1f s" % settled,
                    "burst stored": "%d of %d" % (len(stored), BURST),
                    "burst replies stored": "%d of %d" % (sum(replied.values()), BURST)})
    figures.update(phase.note())
    record("8. worker SIGKILL mid-batch", rec, time.monotonic() - t_start, **figures)
    phase.reraise()

    assert stack.workers[1].alive, stack.workers[1].describe()
    probe_all_partitions(kafka, timeout=45)
    hung = [a for a in load.attempts if a.outcome == TIMEOUT]
    assert not hung, "%d request(s) got no answer within %.0f s" % (len(hung), load.timeout)
    assert rec.acked > 0
    rec.assert_clean()
    missing = [tid for tid in burst_ids if tid not in stored]
    assert not missing, "%d burst creates lost (e.g. %s)" % (len(missing), missing[:3])
    for tid in burst_ids[:50]:
        assert tickets_coll.count_documents({"_id": ObjectId(tid)}) == 1
    assert tickets_coll.count_documents({"teamId": owner.team}) == BURST
    for ticket in tickets_coll.find({"teamId": owner.team}):
        tid = str(ticket["_id"])
        assert [str(r["_id"]) for r in ticket["response"]] == [reply_ids[tid]], "ticket %s: %s" % (
            tid, [str(r["_id"]) for r in ticket["response"]])
        assert ticket["__v"] == 1, ticket
