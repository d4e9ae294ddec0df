"""Item 7: the same command delivered twice leaves one ticket / one reply
and gets the same answer."""

from bson import ObjectId

from helpers.api import (MSG_CREATED, MSG_REPLIED, assert_ticket_shape, expect_ok)
from helpers.kafka import COMMANDS, EVENTS, create_command, new_id, reply_command


def _assert_reply_ok(reply, status, message):
    obj, parts, cid = reply
    assert obj.get("version") == 1, obj
    assert obj.get("status") == status and obj.get("success") is True, obj
    assert obj.get("message") == message, obj
    assert all(p.headers.get("correlation-id") == cid for p in parts), parts
    assert all(p.key == cid.encode() for p in parts), [p.key for p in parts]
    assert_ticket_shape(obj["data"])
    return obj["data"]


def test_same_create_command_twice_leaves_one_ticket(kafka, taps, tickets_coll, api, tokens):
    user = tokens.customer()
    events = taps(EVENTS)
    ticket_id = new_id()
    command = create_command(ticket_id, user.team, actor_id=user.sub, subject="sent twice",
                             priority="medium")
    # a redelivery: both copies in the partition back to back
    first, second = kafka.request_many([(COMMANDS, command, ticket_id, None)] * 2)
    d1 = _assert_reply_ok(first, 201, MSG_CREATED)
    d2 = _assert_reply_ok(second, 201, MSG_CREATED)
    assert d1 == d2, "the duplicate was answered differently"
    assert d1["_id"] == ticket_id and d1["creatorId"] == user.sub
    assert d1["subject"] == "sent twice" and d1["priority"] == "medium"
    # a client retry long after the first: same answer again
    (third,) = kafka.request_many([(COMMANDS, command, ticket_id, None)])
    assert _assert_reply_ok(third, 201, MSG_CREATED) == d1

    assert tickets_coll.count_documents({"_id": ObjectId(ticket_id)}) == 1
    assert tickets_coll.count_documents({"teamId": user.team}) == 1
    assert api.list_tickets(user) == [d1]
    created = events.wait_for(lambda m: m.json()["eventId"] == "created:" + ticket_id,
                              what="ticket.created event")
    assert all(e.json()["ticket"] == d1 for e in created)


def test_same_reply_command_twice_leaves_one_reply(kafka, taps, tickets_coll, api, customer):
    ticket = api.new_ticket(customer)
    reply_id = new_id()
    command = reply_command(ticket["_id"], reply_id, team=customer.team,
                            actor_id=customer.sub, description="said twice")
    first, second = kafka.request_many([(COMMANDS, command, ticket["_id"], None)] * 2)
    d1 = _assert_reply_ok(first, 200, MSG_REPLIED)
    d2 = _assert_reply_ok(second, 200, MSG_REPLIED)
    assert d1 == d2, "the duplicate was answered differently"
    assert d1["__v"] == 1 and len(d1["response"]) == 1
    entry = d1["response"][0]
    assert entry["_id"] == reply_id and entry["description"] == "said twice"
    assert entry["creatorId"] == customer.sub and entry["creatorType"] == "customer"
    (third,) = kafka.request_many([(COMMANDS, command, ticket["_id"], None)])
    assert _assert_reply_ok(third, 200, MSG_REPLIED) == d1

    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 1 and len(doc["response"]) == 1
    assert api.list_tickets(customer) == [d1]


def test_duplicate_reply_after_a_later_reply_answers_as_the_first_time(kafka, api, customer,
                                                                       admin, tickets_coll):
    """A retry of reply A that comes after reply B must not add A again."""
    ticket = api.new_ticket(customer)
    reply_a = new_id()
    command_a = reply_command(ticket["_id"], reply_a, team=customer.team,
                              actor_id=customer.sub, description="first")
    (first,) = kafka.request_many([(COMMANDS, command_a, ticket["_id"], None)])
    d1 = _assert_reply_ok(first, 200, MSG_REPLIED)
    expect_ok(api.admin_create_reply(admin, ticket["_id"], {"description": "second"}),
              200, MSG_REPLIED)
    (again,) = kafka.request_many([(COMMANDS, command_a, ticket["_id"], None)])
    obj = again[0]
    assert obj["status"] == 200 and obj["success"] is True, obj
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 2 and [str(r["_id"]) for r in doc["response"]][0] == reply_a
    assert len(doc["response"]) == 2
    assert [r["_id"] for r in obj["data"]["response"]][0] == d1["response"][0]["_id"]


def test_duplicate_http_retry_ids_differ(api, customer):
    """Two identical HTTP creates are two tickets (the gateway makes a new id each time)."""
    a = expect_ok(api.create_ticket(customer), 201, MSG_CREATED)
    b = expect_ok(api.create_ticket(customer), 201, MSG_CREATED)
    assert a["_id"] != b["_id"]
    assert len(api.list_tickets(customer)) == 2
