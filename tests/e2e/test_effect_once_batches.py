"""Group commit (issue 11): a burst on one partition is applied as batches —
runs of creates as one unordered insertMany — with the same answers, the
same effects and the same order as one message at a time: a duplicate inside
a batch is answered as the first time, another creator's id is 409, a poison
message is dead-lettered alone, and a reply before its ticket's create is 404."""

from bson import ObjectId

from helpers.api import MSG_CREATED, MSG_REPLIED
from helpers.kafka import COMMANDS, DLQ, EVENTS, create_command, new_id, reply_command


def test_a_burst_in_one_partition_keeps_answers_effects_and_order(api, kafka, taps, tickets_coll, tokens):
    user, other = tokens.customer(), tokens.customer()
    events, dlq = taps(EVENTS), taps(DLQ)
    a, b, c, d = new_id(), new_id(), new_id(), new_id()
    reply_a, reply_d = new_id(), new_id()
    create = lambda tid, who: create_command(tid, who.team, actor_id=who.sub, subject="burst " + tid)
    burst = [
        (create(a, user), 201, MSG_CREATED),
        (create(b, user), 201, MSG_CREATED),
        (create(a, user), 201, MSG_CREATED),  # duplicate inside the batch
        (b"{not json", 400, None),  # poison: alone to the DLQ
        (reply_command(a, reply_a, team=user.team, actor_id=user.sub), 200, MSG_REPLIED),
        (create(b, other), 409, "Ticket id already in use"),  # another team's id
        (reply_command(d, reply_d, team=user.team, actor_id=user.sub), 404, "Ticket not found"),
        (create(d, user), 201, MSG_CREATED),  # after the 404: the reply was not applied
        (create(c, user), 201, MSG_CREATED),
    ]
    replies = kafka.request_many([(COMMANDS, value, "burst", 0) for value, _, _ in burst], timeout=30)
    for (value, status, message), (obj, _, _) in zip(burst, replies):
        assert obj.get("status") == status, (value, obj)
        if message is not None:
            assert obj.get("message") == message, (value, obj)
    assert replies[0][0]["data"] == replies[2][0]["data"], "the duplicate was answered differently"

    for tid in (a, b, c, d):
        assert tickets_coll.count_documents({"_id": ObjectId(tid)}) == 1
    assert [r["_id"] for r in tickets_coll.find_one({"_id": ObjectId(a)})["response"]] == [ObjectId(reply_a)]
    assert tickets_coll.find_one({"_id": ObjectId(d)})["response"] == []
    assert tickets_coll.find_one({"_id": ObjectId(b)})["teamId"] == user.team
    assert tickets_coll.count_documents({"teamId": other.team}) == 0
    dlq.wait_for(lambda m: m.json()["source"]["topic"] == COMMANDS and m.json()["source"]["partition"] == 0,
                 count=1, timeout=20, what="the poison message's dead letter")
    for tid in (a, b, c, d):
        events.wait_for(lambda m, tid=tid: m.json()["eventId"] == "created:" + tid, timeout=20,
                        what="ticket.created " + tid)
    events.wait_for(lambda m: m.json()["eventId"] == "replied:" + reply_a, timeout=20, what="ticket.replied")
