"""Fault 3: the database is away for ~10 s under load (stopped with SIGTERM,
or crashed with SIGKILL), then back on the same port with the same data.

Workers back off and retry, report not-ready on /readyz meanwhile, store no
offset for unapplied commands and skip nothing: when the database is back,
everything queued (also the requests that got 504, and the commands and
queries published straight to Kafka during the outage) is applied or
answered exactly once.
"""

import collections
import time
import uuid

import pytest
from bson import ObjectId
from confluent_kafka import Consumer, TopicPartition

from helpers.kafka import (COMMANDS, QUERIES, REPLIES, TEST_REPLY_PARTITION, create_command,
                           list_query, new_id, partition_count, probe_all_partitions,
                           wait_replies)
from helpers.wait import wait_until

from faultlib import TIMEOUT, Load, Phase, ReadyWatch, latency_figures, ms, record, settle

OUTAGE_S = 10
GROUP_ID = "ticket-workers"   # the workers' default KAFKA_GROUP_ID


def committed_offsets(bootstrap, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP_ID,
                         "enable.auto.commit": False})
    try:
        got = consumer.committed([TopicPartition(COMMANDS, p) for p in partitions], timeout=15)
        return {tp.partition: tp.offset for tp in got}
    finally:
        consumer.close()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_database_down_under_load(fault_stack, tokens, tickets_coll, kafka, stackctl, how):
    stack = fault_stack
    t_start = time.monotonic()
    watches = [ReadyWatch(stack.ready_url(i)).start() for i in range(2)]
    direct_team = "faults-direct-" + uuid.uuid4().hex[:12]
    direct = []
    query_cids = []
    figures = {}
    load = None
    replies_tap = kafka.tap(REPLIES, [TEST_REPLY_PARTITION])
    phase = Phase()
    try:
        with phase:
            for i, watch in enumerate(watches):
                wait_until(lambda w=watch: w.samples and w.samples[-1][1] == 200, 15,
                           "worker %d /readyz 200 before the outage" % i)
            load = Load(stack.gateway.base, tokens, "db-" + how, clients=20, kafka=kafka).start()
            load.sleep_until(5)
            figures["%s-ferretdb took" % how] = "%.1f s" % stackctl("%s-ferretdb" % how)
            down_mono = time.monotonic()
            down_at = load.elapsed()

            # From "another service" while the DB is away: a create command on every
            # partition of ticket.commands (no reply wanted) and a list query on every
            # partition of ticket.queries (answer to the suite's reply partition), so
            # that every worker has database work whatever partitions it holds.
            items = []
            for p in range(partition_count(kafka.bootstrap, COMMANDS)):
                tid = new_id()
                direct.append(tid)
                command = create_command(tid, direct_team, subject="direct p%d" % p)
                items.append((COMMANDS, command, tid, None, p))
            produced = kafka.produce_many(items)
            queries = []
            for p in range(partition_count(kafka.bootstrap, QUERIES)):
                cid = "faults-" + uuid.uuid4().hex
                query_cids.append(cid)
                queries.append((QUERIES, list_query(direct_team), direct_team,
                                kafka.reply_headers(cid), p))
            kafka.produce_many(queries)
            # For the rest of the outage (far past auto.commit.interval.ms, 1 s),
            # a wrongly stored offset would show up as committed: look every
            # second, not once after a guess at how long a commit takes.
            skipped = {}
            while not skipped and load.elapsed() < down_at + OUTAGE_S - 1:
                time.sleep(1)
                committed = committed_offsets(kafka.bootstrap, [p for p, _ in produced])
                skipped = {p: (committed[p], o) for p, o in produced if committed[p] > o}

            load.sleep_until(down_at + OUTAGE_S)
            figures["start-ferretdb took"] = "%.1f s" % stackctl("start-ferretdb")
            up_mono = time.monotonic()
            up_at = load.elapsed()
            wait_until(lambda: load.first_ack_after(up_at) is not None, 60,
                       "a 2xx after the database came back")
            figures["first 2xx after DB up"] = "%.1f s" % load.first_ack_after(up_at)
            load.sleep_until(load.elapsed() + 5)
            query_replies = wait_replies(replies_tap, query_cids, 60)
    finally:
        replies_tap.close()
        if load is not None:
            load.stop()
        # readiness keeps being watched until the workers said 200 again
        for i, watch in enumerate(watches):
            try:
                wait_until(lambda w=watch: w.samples and w.samples[-1][1] == 200, 30,
                           "worker %d /readyz 200 after the outage" % i)
            except AssertionError:
                pass
        for watch in watches:
            watch.stop()
    if load is None:
        phase.reraise()

    outage_504 = {a.marker for a in load.attempts if a.outcome == 504}
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60, need=outage_504)
    rec = load.reconcile(tickets_coll)
    load.close()
    scenario = "3. database %s, back after ~10 s" % ("SIGTERM" if how == "stop" else "SIGKILL")
    if phase.error:
        figures.update(phase.note())
        record(scenario, rec, time.monotonic() - t_start, **figures)
        phase.reraise()
    wait_until(lambda: tickets_coll.count_documents({"teamId": direct_team}) >= len(direct), 60,
               "the commands published during the outage applied")
    direct_docs = list(tickets_coll.find({"teamId": direct_team}, {"_id": 1}))
    missing_504 = [m for m in outage_504 if len(rec.by_marker.get(m, [])) != 1]

    ready_during = [w.statuses(down_mono + 1, up_mono) for w in watches]
    ready_back = [w.first(200, up_mono) for w in watches]
    lat = latency_figures(load.attempts, 504)
    figures.update({
        "504 (all applied once after)": "%d (%d not exactly once)" % (len(outage_504),
                                                                       len(missing_504)),
        "504 latency p50": ms(lat["p50"]),
        "direct commands applied": "%d/%d" % (len(direct_docs), len(direct)),
        "direct queries answered": "%d/%d" % (len(query_replies), len(query_cids)),
        "readyz 503 during outage (w0, w1)": "%d/%d, %d/%d" % (
            ready_during[0].count(503), len(ready_during[0]),
            ready_during[1].count(503), len(ready_during[1])),
        "readyz 200 again after DB up": ", ".join(
            "-" if t is None else "%.1f s" % (t - up_mono) for t in ready_back),
        "settled after load": "%.1f s" % settled})
    record(scenario, rec, time.monotonic() - t_start, **figures)

    for proc in [stack.gateway] + stack.workers:
        assert proc.alive, "died: " + proc.describe()
    assert not skipped, "offsets committed past commands not applied yet " \
                        "(partition: (committed, unapplied offset)): %r" % skipped
    assert sorted(str(d["_id"]) for d in direct_docs) == sorted(direct), direct_docs
    for oid in direct:
        assert tickets_coll.count_documents({"_id": ObjectId(oid)}) == 1
    for obj, _parts, cid in query_replies:
        assert obj.get("status") == 200, (cid, obj)
    hung = [a for a in load.attempts if a.outcome == TIMEOUT]
    assert not hung, "%d request(s) hung" % len(hung)
    assert not missing_504, "%d request(s) answered 504 not applied exactly once: %s" % (
        len(missing_504), missing_504[:5])
    for i in range(2):
        assert 503 in ready_during[i], \
            "worker %d /readyz never 503 while the database was away: %r" % (
                i, dict(collections.Counter(ready_during[i])))
        assert ready_back[i] is not None, "worker %d /readyz not 200 after the outage" % i
    rec.assert_clean()
    probe_all_partitions(kafka, timeout=30)
