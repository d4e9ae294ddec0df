"""Item 8: other services publish to ticket.commands directly; invalid
messages go to ticket.dlq and the partition keeps flowing; events follow
every change."""

import base64
import json

from bson import ObjectId

from helpers.api import (ISO_RE, MSG_FETCHED, MSG_REPLIED, assert_ticket_shape, expect_ok)
from helpers.kafka import (COMMANDS, DLQ, EVENTS, QUERIES, create_command, list_query, new_id,
                           reply_command)
from helpers.wait import wait_until


def _event(events, event_id):
    (msg,) = events.wait_for(lambda m: m.json()["eventId"] == event_id, timeout=20,
                             what="event %s" % event_id)[:1]
    return msg, msg.json()


def test_command_without_reply_headers_is_applied(kafka, taps, tickets_coll, api, tokens):
    user = tokens.customer()
    events = taps(EVENTS)
    ticket_id = new_id()
    command = create_command(ticket_id, user.team, actor_id=user.sub, category="Billing",
                             subject="from another service", description="no reply wanted",
                             priority="high")
    kafka.produce(COMMANDS, command, key=ticket_id)
    doc = wait_until(lambda: tickets_coll.find_one({"_id": ObjectId(ticket_id)}), 20,
                     "the ticket in MongoDB")
    assert doc["teamId"] == user.team
    listed = api.list_tickets(user)
    assert len(listed) == 1
    ticket = listed[0]
    assert_ticket_shape(ticket)
    assert ticket["_id"] == ticket_id
    assert (ticket["creatorId"], ticket["creatorType"]) == (user.sub, "customer")
    assert (ticket["category"], ticket["subject"], ticket["description"], ticket["priority"]) == \
        ("Billing", "from another service", "no reply wanted", "high")
    assert (ticket["status"], ticket["response"], ticket["__v"]) == ("created", [], 0)

    msg, event = _event(events, "created:" + ticket_id)
    assert msg.key == ticket_id.encode()
    assert event["version"] == 1 and event["type"] == "ticket.created"
    assert event["teamId"] == user.team
    assert ISO_RE.match(event["occurredAt"])
    assert event["ticket"] == ticket


def test_command_without_priority_defaults_to_low(kafka, tickets_coll, api, tokens):
    user = tokens.customer()
    ticket_id = new_id()
    kafka.produce(COMMANDS, create_command(ticket_id, user.team, actor_id=user.sub), key=ticket_id)
    wait_until(lambda: tickets_coll.find_one({"_id": ObjectId(ticket_id)}), 20, "the ticket")
    (ticket,) = api.list_tickets(user)
    assert ticket["priority"] == "low"


def test_http_create_and_reply_emit_events_in_order(api, customer, admin, taps):
    events = taps(EVENTS)
    ticket = api.new_ticket(customer)
    replied = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    replied2 = expect_ok(api.admin_create_reply(admin, ticket["_id"]), 200, MSG_REPLIED)
    created_msg, created = _event(events, "created:" + ticket["_id"])
    assert created["type"] == "ticket.created" and created["ticket"] == ticket
    assert created["teamId"] == customer.team
    for data, role in ((replied, "customer"), (replied2, "admin")):
        entry = data["response"][-1]
        msg, event = _event(events, "replied:" + entry["_id"])
        assert msg.key == ticket["_id"].encode()
        assert msg.partition == created_msg.partition and msg.offset > created_msg.offset
        assert event["version"] == 1 and event["type"] == "ticket.replied"
        assert event["ticketId"] == ticket["_id"] and event["teamId"] == customer.team
        assert event["reply"] == entry and entry["creatorType"] == role
        assert event["ticket"] == data
        assert ISO_RE.match(event["occurredAt"])


def test_reply_command_without_reply_headers_is_applied(kafka, taps, api, customer):
    events = taps(EVENTS)
    ticket = api.new_ticket(customer)
    reply_id = new_id()
    admin_id = new_id()
    kafka.produce(COMMANDS, reply_command(ticket["_id"], reply_id, role="admin",
                                          actor_id=admin_id, description="from a bot"),
                  key=ticket["_id"])
    _msg, event = _event(events, "replied:" + reply_id)
    (listed,) = api.list_tickets(customer)
    assert listed["__v"] == 1
    assert listed["response"][0]["_id"] == reply_id
    assert listed["response"][0]["creatorId"] == admin_id
    assert listed["response"][0]["creatorType"] == "admin"
    assert event["ticket"] == listed


# --- dead letters ---------------------------------------------------------------

def _valid(ticket_id, team):
    return create_command(ticket_id, team)


def _bad_commands(key, team):
    """(case, raw value bytes) of invalid commands."""
    def mutate(fn):
        cmd = _valid(key, team)
        fn(cmd)
        return json.dumps(cmd).encode()

    def drop(path):
        def fn(cmd):
            obj = cmd
            for part in path[:-1]:
                obj = obj[part]
            del obj[path[-1]]
        return fn

    def setv(path, value):
        def fn(cmd):
            obj = cmd
            for part in path[:-1]:
                obj = obj[part]
            obj[path[-1]] = value
        return fn

    reply = reply_command(key, new_id(), team=team)
    return [
        ("not-json", b"this is not json {"),
        ("invalid-utf8", b"\xff\xfe\xfd not utf-8"),
        ("empty-value", b""),
        ("json-array", b"[1,2,3]"),
        ("duplicate-keys", b'{"version":1,"version":1,"type":"ticket.create"}'),
        ("wrong-version", mutate(setv(["version"], 2))),
        ("version-as-string", mutate(setv(["version"], "1"))),
        ("missing-version", mutate(drop(["version"]))),
        ("missing-type", mutate(drop(["type"]))),
        ("unknown-type", mutate(setv(["type"], "ticket.delete"))),
        ("missing-actor", mutate(drop(["actor"]))),
        ("unknown-role", mutate(setv(["actor", "role"], "root"))),
        ("customer-without-team", mutate(drop(["actor", "team"]))),
        ("actor-id-too-long", mutate(setv(["actor", "id"], "a" * 129))),
        ("missing-subject", mutate(drop(["ticket", "subject"]))),
        ("subject-wrong-type", mutate(setv(["ticket", "subject"], 42))),
        ("blank-description", mutate(setv(["ticket", "description"], "   "))),
        ("subject-too-long", mutate(setv(["ticket", "subject"], "s" * 201))),
        ("invalid-priority", mutate(setv(["ticket", "priority"], "critical"))),
        ("unknown-ticket-field", mutate(setv(["ticket", "status"], "closed"))),
        ("unknown-top-level-field", mutate(setv(["extra"], True))),
        ("bad-ticket-id", mutate(setv(["ticket", "_id"], "xyz"))),
        ("uppercase-ticket-id", mutate(setv(["ticket", "_id"], key.upper()))),
        ("reply-bad-ticket-id", json.dumps(dict(reply, ticketId="nope")).encode()),
        ("reply-missing-reply-id", json.dumps(dict(reply, reply={"description": "x"})).encode()),
    ]


REASON_HINTS = {
    "wrong-version": "version", "missing-version": "version", "missing-type": "type",
    "unknown-type": "type", "missing-subject": "subject", "subject-wrong-type": "subject",
    "subject-too-long": "subject", "invalid-priority": "priority",
    "blank-description": "description",
    "filter-status-not-a-list": "filter.status", "page-limit-0": "page.limit",
    "page-after-forged": "Invalid cursor",
}


def _check_dead_letter(dlq_msg, topic, produced, raw, case, key):
    record = dlq_msg.json()
    partition, offset = produced
    assert record["version"] == 1, (case, record)
    assert isinstance(record["reason"], str) and record["reason"].strip(), (case, record)
    if case in REASON_HINTS:
        assert REASON_HINTS[case] in record["reason"], (case, record["reason"])
    assert record["source"] == {"topic": topic, "partition": partition, "offset": offset}, \
        (case, record)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        assert record.get("payload") == text and "payloadBase64" not in record, (case, record)
    else:
        assert record.get("payloadBase64") == base64.b64encode(raw).decode(), (case, record)
        assert "payload" not in record, (case, record)
    assert dlq_msg.key == key.encode(), (case, dlq_msg.key)
    assert dlq_msg.headers.get("x-e2e-case") == case, "original headers not copied: %r" % (
        dlq_msg.headers,)
    return record


def test_invalid_commands_go_to_dlq_and_partition_keeps_flowing(kafka, taps, tickets_coll,
                                                                api, tokens):
    user = tokens.customer()
    dlq = taps(DLQ)
    events = taps(EVENTS)
    good_id = new_id()
    cases = _bad_commands(good_id, user.team)
    produced = kafka.produce_many([
        (COMMANDS, raw, good_id, [("x-e2e-case", case)], None) for case, raw in cases])
    partitions = {p for p, _ in produced}
    assert len(partitions) == 1, "same key, same partition: %r" % partitions
    # then a valid command, same key, same partition
    (good_at,) = kafka.produce_many([(COMMANDS, _valid(good_id, user.team), good_id, None, None)])
    assert good_at[0] in partitions and good_at[1] > max(o for _, o in produced)

    offsets = {o for _, o in produced}
    dead = dlq.wait_for(lambda m: m.json()["source"]["offset"] in offsets and
                        m.json()["source"]["topic"] == COMMANDS and
                        m.json()["source"]["partition"] in partitions,
                        count=len(cases), timeout=30, what="dead letters")
    by_case = {m.headers.get("x-e2e-case"): m for m in dead}
    assert sorted(by_case) == sorted(c for c, _ in cases), sorted(by_case)
    for (case, raw), at in zip(cases, produced):
        _check_dead_letter(by_case[case], COMMANDS, at, raw, case, good_id)

    doc = wait_until(lambda: tickets_coll.find_one({"_id": ObjectId(good_id)}), 20,
                     "the valid command after the bad ones applied")
    assert doc["teamId"] == user.team
    _event(events, "created:" + good_id)
    assert tickets_coll.count_documents({"teamId": user.team}) == 1
    assert [t["_id"] for t in api.list_tickets(user)] == [good_id]


def test_invalid_queries_go_to_dlq_and_partition_keeps_flowing(kafka, taps, api, tokens):
    user = tokens.customer()
    dlq = taps(DLQ)
    valid = list_query(user.team, actor_id=user.sub)
    cases = [
        ("not-json", b"{{{"),
        ("wrong-version", json.dumps(dict(valid, version=3)).encode()),
        ("unknown-type", json.dumps(dict(valid, type="tickets.purge")).encode()),
        ("filter-status-not-a-list", json.dumps(dict(valid, filter={"status": "created"})).encode()),
        ("page-limit-0", json.dumps(dict(valid, page={"limit": 0})).encode()),
        ("page-after-forged", json.dumps(dict(valid, page={"after": "A" * 39})).encode()),
        ("customer-without-team", json.dumps(dict(valid, actor={"id": user.sub,
                                                                "role": "customer"})).encode()),
    ]
    produced = kafka.produce_many([
        (QUERIES, raw, user.team, [("x-e2e-case", case)], None) for case, raw in cases])
    offsets = {o for _, o in produced}
    dead = dlq.wait_for(lambda m: m.json()["source"]["topic"] == QUERIES and
                        m.json()["source"]["offset"] in offsets and
                        m.json()["source"]["partition"] == produced[0][0],
                        count=len(cases), timeout=30, what="dead letters of queries")
    by_case = {m.headers.get("x-e2e-case"): m for m in dead}
    for (case, raw), at in zip(cases, produced):
        _check_dead_letter(by_case[case], QUERIES, at, raw, case, user.team)
    # the partition still answers: a valid query with the same key
    ((reply, _parts, _cid),) = kafka.request_many([(QUERIES, valid, user.team, None)])
    assert reply["status"] == 200 and reply["message"] == MSG_FETCHED and reply["data"] == []


def test_invalid_command_with_reply_address_gets_400_reply(kafka, taps):
    dlq = taps(DLQ)
    ticket_id = new_id()
    bad = create_command(ticket_id, "team-x")
    del bad["ticket"]["subject"]
    ((reply, parts, cid),) = kafka.request_many([(COMMANDS, bad, ticket_id, None)])
    assert reply["version"] == 1 and reply["status"] == 400 and reply["success"] is False, reply
    assert "data" not in reply, reply
    (dead,) = dlq.wait_for(lambda m: m.headers.get("correlation-id") == cid, timeout=20,
                           what="the dead letter")
    assert reply["message"] == dead.json()["reason"]
    assert "subject" in reply["message"]
