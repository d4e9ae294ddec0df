"""Fault 6, the part tests/e2e/test_other_services.py does not cover:
oversized and pathological poison messages (close to the broker's 1 MB
limit, invalid UTF-8, escapes that grow sixfold in JSON, deep nesting) on
ticket.commands and ticket.queries go to ticket.dlq with a reason and a
bounded copy of the payload, and the partition keeps flowing.
"""

import base64
import json
import time

from bson import ObjectId
from confluent_kafka import Consumer, TopicPartition

from helpers.api import MSG_FETCHED
from helpers.kafka import COMMANDS, DLQ, QUERIES, create_command, list_query, new_id
from helpers.wait import wait_until

from faultlib import record

DLQ_PAYLOAD_MAX = 256 * 1024      # worker/wk_output.c DLQ_PAYLOAD_MAX_BYTES
BIG = 900 * 1000                  # under the producers' 1,000,000-byte message limit
GROUP_ID = "ticket-workers"


def _oversized_commands(key, team):
    cmd = create_command(key, team)
    cmd["ticket"]["description"] = "d" * BIG
    return [
        ("oversized-description", json.dumps(cmd).encode(), "description"),
        ("oversized-not-json", b"{" + b"a" * BIG, None),
        ("oversized-invalid-utf8", b"\xff" * (700 * 1000), None),
        ("oversized-control-chars", b"\x01" * (400 * 1000), None),
        ("deep-nesting", b"[" * 100000 + b"]" * 100000, None),
        ("deep-nesting-object", b'{"a":' * 50000 + b"1" + b"}" * 50000, None),
    ]


def _check(msg, topic, at, raw, case, hint):
    record_ = msg.json()
    partition, offset = at
    assert record_["version"] == 1, (case, record_)
    assert isinstance(record_["reason"], str) and record_["reason"].strip(), (case, record_)
    if hint:
        assert hint in record_["reason"], (case, record_["reason"])
    assert record_["source"] == {"topic": topic, "partition": partition, "offset": offset}, \
        (case, record_["source"])
    # The letter keeps a prefix of the original: at most DLQ_PAYLOAD_MAX bytes,
    # fewer when escaping would push the letter past the broker's limit.
    if "payload" in record_:
        kept = record_["payload"].encode("utf-8")
    else:
        kept = base64.b64decode(record_["payloadBase64"])
    assert raw.startswith(kept), case
    assert 0 < len(kept) <= DLQ_PAYLOAD_MAX, (case, len(kept))
    if len(kept) < len(raw):
        assert record_.get("payloadTruncated") is True, (case, sorted(record_))
    if "payload" not in record_:
        try:
            kept.decode("utf-8")
            raise AssertionError((case, "valid UTF-8 sent as base64"))
        except UnicodeDecodeError:
            pass
    assert len(msg.value) < 1000 * 1000, (case, len(msg.value))
    return record_


def _committed(bootstrap, topic, partition):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP_ID,
                         "enable.auto.commit": False})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=15)
        return tp.offset
    finally:
        consumer.close()


def test_oversized_poison_commands_and_queries(fault_stack, kafka, tickets_coll, tokens):
    t_start = time.monotonic()
    user = tokens.customer()
    key = new_id()
    cases = _oversized_commands(key, user.team)
    big_query = list_query(user.team, actor_id=user.sub)
    big_query["actor"]["id"] = "q" * BIG
    big_query_raw = json.dumps(big_query).encode()
    with kafka.tap(DLQ) as dlq:
        produced = kafka.produce_many([(COMMANDS, raw, key, [("x-fault-case", case)], None)
                                       for case, raw, _hint in cases])
        assert len({p for p, _ in produced}) == 1
        partition = produced[0][0]
        (q_at,) = kafka.produce_many([(QUERIES, big_query_raw, user.team,
                                       [("x-fault-case", "oversized-query")], None)])
        # then valid traffic on the same partitions
        good_at = kafka.produce(COMMANDS, create_command(key, user.team, actor_id=user.sub),
                                key=key)
        assert good_at[0] == partition
        doc = wait_until(lambda: tickets_coll.find_one({"_id": ObjectId(key)}), 30,
                         "the valid command after the oversized ones applied")
        ((reply, _parts, _cid),) = kafka.request_many(
            [(QUERIES, list_query(user.team, actor_id=user.sub), user.team, q_at[0])],
            timeout=30)
        dlq.poll(2)
    letters = {m.headers.get("x-fault-case"): m for m in dlq.messages
               if m.headers.get("x-fault-case")}
    # every offset up to the valid command is committed (auto-commit each second)
    deadline = time.monotonic() + 15
    committed = _committed(kafka.bootstrap, COMMANDS, partition)
    while committed <= good_at[1] and time.monotonic() < deadline:
        time.sleep(0.5)
        committed = _committed(kafka.bootstrap, COMMANDS, partition)
    # the workers still stop cleanly (nothing left outstanding)
    stops = {}
    for worker in fault_stack.workers:
        since = worker.log_size()
        begun = time.monotonic()
        rc = worker.stop(grace=20)
        stops[worker.worker_id] = (rc, round(time.monotonic() - begun, 1),
                                   "drain timed out" in worker.log_text(since))

    missing = [case for case, _raw, _hint in cases if case not in letters]
    record("6. oversized poison messages", None, time.monotonic() - t_start,
           **{"poison messages": len(cases) + 1,
              "dead letters": "%d (missing: %s)" % (len(letters), ", ".join(missing) or "none"),
              "committed offset / valid command offset": "%s / %s" % (committed, good_at[1]),
              "worker stops (rc, s, drain timed out)": stops})

    assert doc["teamId"] == user.team
    assert reply["status"] == 200 and reply["message"] == MSG_FETCHED, reply
    for (case, raw, hint), at in zip(cases, produced):
        if case in letters:
            _check(letters[case], COMMANDS, at, raw, case, hint)
    assert "oversized-query" in letters, "no dead letter for the oversized query"
    _check(letters["oversized-query"], QUERIES, q_at, big_query_raw, "oversized-query", None)
    assert not missing, "no dead letter for %s (see the worker log: produce failed?)" % missing
    assert committed > good_at[1], (
        "the group's committed offset on %s[%d] stays at %d: it does not move past the "
        "poison messages (valid command at %d)" % (COMMANDS, partition, committed, good_at[1]))
    for worker_id, (rc, took, timed_out) in stops.items():
        assert rc == 0 and not timed_out, "worker %s stop: rc %s after %s s, drain timed out: %s" \
            % (worker_id, rc, took, timed_out)
