"""A worker keeps a copy of each ticket as it last stored or read it
(worker/wk_recent): a reply to such a ticket is decided on the copy and
written with the copy's __v in the filter, without reading the ticket first.
A user must not be able to tell: the answers, the stored ticket and the
status moves are those of a read. A copy that is no longer what is stored
(changed by another worker, or behind the workers' back: every change bumps
__v) is caught by that filter, and the reply is read and decided again."""

import functools

from bson import ObjectId

from helpers import metrics as prom
from helpers.api import MSG_CREATED, MSG_FETCHED, MSG_REPLIED
from helpers.kafka import COMMANDS, create_command, new_id, reply_command
from helpers.ops import burst, worker_holding

UNREAD = "ticket_worker_unread_writes_total"
STALE = "ticket_worker_recent_stale_total"
BULK = "ticket_worker_replies_bulk_total"
# Off by default (docs/operations.md: a stalled database during a rebalance
# stored a reply twice once in three fault runs with it on).
RECENT_ON = {"WORKER_RECENT_TICKETS": 2048}


def _send(kafka, partition, ticket_id, command):
    """One command to the worker's partition; its answer."""
    ((answer, _, _),) = kafka.request_many([(COMMANDS, command, ticket_id, partition)], timeout=30)
    return answer


def _counters(url):
    families = prom.scrape(url + "/metrics")[0]
    return prom.value(families, UNREAD), prom.value(families, STALE)


def test_replies_use_the_copy_and_a_stale_copy_is_read_again(api, kafka, tickets_coll, tokens, procs):
    worker, url, partition = worker_holding(procs, kafka, COMMANDS, env=RECENT_ON)
    customer, admin = tokens.customer(), tokens.admin()
    ticket_id = new_id()

    send = functools.partial(_send, kafka, partition, ticket_id)
    counters = functools.partial(_counters, url)

    def reply(reply_id, who, text):
        return send(reply_command(ticket_id, reply_id, team=who.team, actor_id=who.sub, role=who.role,
                                  description=text))

    def stored():
        doc = tickets_coll.find_one({"_id": ObjectId(ticket_id)})
        return doc["status"], doc["__v"], [str(r["_id"]) for r in doc["response"]]

    def change_behind_the_back(status):
        tickets_coll.update_one({"_id": ObjectId(ticket_id)}, {"$set": {"status": status}, "$inc": {"__v": 1}})

    created = send(create_command(ticket_id, customer.team, actor_id=customer.sub))
    assert (created["status"], created["message"]) == (201, MSG_CREATED), created
    unread, stale = counters()
    assert unread is not None and stale is not None, "the counters are not exported from the start"

    # The worker stored the ticket: the reply needs no read.
    r1 = new_id()
    first = reply(r1, customer, "Customer adds details.")
    assert (first["status"], first["message"]) == (200, MSG_REPLIED), first
    assert counters() == (unread + 1, stale)
    assert stored() == ("created", 1, [r1])
    assert first["data"] == api.get_ticket(customer, ticket_id).json()["data"]

    # Redelivered: the copy holds the reply already, so the worker reads,
    # answers as the first time and stores nothing.
    again = reply(r1, customer, "Customer adds details.")
    assert again == first
    assert stored() == ("created", 1, [r1])

    # Changed behind the worker's back: the copy's __v no longer matches, so
    # the reply is decided on a read: an admin's reply moves open to pending.
    change_behind_the_back("open")
    r2 = new_id()
    second = reply(r2, admin, "Admin answers.")
    assert (second["status"], second["data"]["status"]) == (200, "pending"), second
    assert counters() == (unread + 1, stale + 1)
    assert stored() == ("pending", 3, [r1, r2])

    # The read refreshed the copy: the customer's answer moves pending back
    # to open without a read, exactly as a read would have decided.
    r3 = new_id()
    third = reply(r3, customer, "Customer answers back.")
    assert (third["status"], third["data"]["status"]) == (200, "open"), third
    assert counters() == (unread + 2, stale + 1)
    assert stored() == ("open", 4, [r1, r2, r3])
    assert third["data"] == api.get_ticket(customer, ticket_id).json()["data"]
    fetched = api.get_ticket(customer, ticket_id)
    assert (fetched.status_code, fetched.json()["message"]) == (200, MSG_FETCHED)

    # Closed by someone else: the pinned write matches nothing, the read says 409.
    change_behind_the_back("closed")
    refused = reply(new_id(), customer, "Too late.")
    assert (refused["status"], refused["message"]) == (409, "Ticket is closed"), refused
    assert counters() == (unread + 2, stale + 2)
    assert stored() == ("closed", 5, [r1, r2, r3])


def test_a_burst_of_replies_uses_the_copies_and_a_stale_one_is_read_again(kafka, tickets_coll, tokens, procs):
    worker, url, partition = worker_holding(procs, kafka, COMMANDS, env=RECENT_ON)
    customer = tokens.customer()
    ids = [new_id() for _ in range(6)]
    created = kafka.request_many([(COMMANDS, create_command(t, customer.team, actor_id=customer.sub), t, partition)
                                  for t in ids], timeout=30)
    assert [obj["status"] for obj, _, _ in created] == [201] * len(ids), created

    def counter(name):
        return prom.value(prom.scrape(url + "/metrics")[0], name)

    def replies():
        pairs = [(t, new_id()) for t in ids]
        commands = [(COMMANDS, reply_command(t, r, team=customer.team, actor_id=customer.sub), t, partition)
                    for t, r in pairs]
        answers = burst(kafka, worker, commands)
        for (t, r), (obj, _, _) in zip(pairs, answers):
            assert (obj["status"], obj["message"]) == (200, MSG_REPLIED), obj
            assert obj["data"]["_id"] == t and obj["data"]["response"][-1]["_id"] == r, obj
        return [r for _, r in pairs], [obj["data"] for obj, _, _ in answers]

    unread, bulk = counter(UNREAD), counter(BULK)
    first, _ = replies()
    # Every ticket was known: decided on its copy, none read.
    assert counter(UNREAD) == unread + len(ids)
    assert counter(BULK) > bulk, "no reply of the burst went through the bulk update"

    # One ticket changed behind the worker's back (a field the reply does not
    # look at, and __v): the burst's update matches fewer than it sent, so
    # every reply goes one by one and reads; each is stored once, and
    # answered with the ticket as it is.
    tickets_coll.update_one({"_id": ObjectId(ids[2])}, {"$set": {"priority": "urgent"}, "$inc": {"__v": 1}})
    second, answers = replies()
    for n, ticket_id in enumerate(ids):
        doc = tickets_coll.find_one({"_id": ObjectId(ticket_id)})
        assert [str(r["_id"]) for r in doc["response"]] == [first[n], second[n]], doc
        assert (doc["priority"], doc["__v"]) == (("urgent", 3) if n == 2 else ("low", 2)), doc
        assert (answers[n]["priority"], answers[n]["__v"]) == (doc["priority"], doc["__v"]), answers[n]


def _update_command(ticket_id, admin, changes, command_id=None):
    return {"version": 1, "type": "ticket.update", "actor": {"id": admin.sub, "role": "admin"},
            "ticketId": ticket_id, "commandId": command_id or new_id(), "changes": changes}


def test_updates_use_the_copy_and_a_stale_copy_is_read_again(kafka, tickets_coll, tokens, procs):
    worker, url, partition = worker_holding(procs, kafka, COMMANDS, env=RECENT_ON)
    customer, admin = tokens.customer(), tokens.admin()
    ticket_id = new_id()

    send = functools.partial(_send, kafka, partition, ticket_id)
    counters = functools.partial(_counters, url)

    def stored():
        doc = tickets_coll.find_one({"_id": ObjectId(ticket_id)})
        return doc["status"], doc["priority"], doc["__v"]

    assert send(create_command(ticket_id, customer.team, actor_id=customer.sub))["status"] == 201
    unread, stale = counters()

    first = _update_command(ticket_id, admin, {"status": "open", "priority": "high"})
    answer = send(first)
    assert (answer["status"], answer["data"]["status"], answer["data"]["priority"]) == (200, "open", "high"), answer
    assert counters() == (unread + 1, stale)
    assert stored() == ("open", "high", 1)
    # Redelivered: the copy holds the change already, so the worker reads it
    # and answers as the first time.
    assert send(first) == answer
    assert stored() == ("open", "high", 1)

    # Closed behind the worker's back: the pinned write matches nothing and
    # the read refuses the change.
    tickets_coll.update_one({"_id": ObjectId(ticket_id)}, {"$set": {"status": "closed"}, "$inc": {"__v": 1}})
    refused = send(_update_command(ticket_id, admin, {"priority": "low"}))
    assert (refused["status"], refused["message"]) == (409, "Ticket is closed"), refused
    assert counters() == (unread + 1, stale + 1)
    assert stored() == ("closed", "high", 2)
