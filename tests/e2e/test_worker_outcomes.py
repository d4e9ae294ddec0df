"""Issue 8 (never-triggered statuses): the worker's 409 "Ticket id already in
use" and its 500 "Internal error, the request was not applied", each
triggered for real and answered as docs/contract.md says."""

import datetime

from bson import ObjectId

from helpers.api import expect_error
from helpers.kafka import COMMANDS, EVENTS, create_command, new_id

MSG_ID_TAKEN = "Ticket id already in use"
MSG_INTERNAL = "Internal error, the request was not applied"


def test_create_reusing_another_teams_ticket_id_is_409(kafka, taps, tickets_coll, api, tokens):
    owner, other = tokens.customer(), tokens.customer()
    ticket = api.new_ticket(owner)
    events = taps(EVENTS)
    # Another service publishes a create for another team with an id in use.
    command = create_command(ticket["_id"], other.team, actor_id=other.sub, subject="not yours")
    ((reply, parts, cid),) = kafka.request_many([(COMMANDS, command, ticket["_id"], None)])
    assert reply == {"version": 1, "status": 409, "success": False, "message": MSG_ID_TAKEN}, reply
    assert all(p.headers.get("correlation-id") == cid for p in parts)

    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert (doc["teamId"], doc["subject"], doc["creatorId"]) == (owner.team, ticket["subject"], owner.sub)
    assert tickets_coll.count_documents({"_id": ObjectId(ticket["_id"])}) == 1
    assert api.list_tickets(other) == []
    # Nothing changed, so nothing is announced.
    events.wait_quiet(2)
    assert not [m for m in events.messages if m.json().get("teamId") == other.team]


def test_a_refused_database_write_is_500_and_changes_nothing(tickets_coll, api, tokens):
    owner, admin = tokens.customer(), tokens.admin()
    now = datetime.datetime.utcnow().replace(microsecond=0)
    ticket_id = ObjectId(new_id())
    # A stored document the database will refuse to $push into (response is
    # not an array): not an outage, so no retry, an answer of 500.
    tickets_coll.insert_one({
        "_id": ticket_id, "creatorId": owner.sub, "creatorType": "customer", "category": "Support",
        "subject": "broken", "description": "response is not an array", "priority": "low",
        "status": "created", "response": "not an array", "createdAt": now, "updatedAt": now,
        "__v": 0, "teamId": owner.team,
    })
    resp = api.admin_create_reply(admin, str(ticket_id))
    expect_error(resp, 500, MSG_INTERNAL)
    doc = tickets_coll.find_one({"_id": ticket_id})
    assert (doc["response"], doc["__v"]) == ("not an array", 0)
