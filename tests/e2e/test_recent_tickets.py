"""A worker keeps a copy of each ticket as it last stored or read it
(worker/wk_recent): a reply to such a ticket is decided on the copy and
written with the copy's __v in the filter, without reading the ticket first.
A user must not be able to tell: the answers, the stored ticket and the
status moves are those of a read. A copy that is no longer what is stored
(changed by another worker, or behind the workers' back: every change bumps
__v) is caught by that filter, and the reply is read and decided again."""

from bson import ObjectId

from helpers import metrics as prom
from helpers.api import MSG_CREATED, MSG_FETCHED, MSG_REPLIED
from helpers.kafka import COMMANDS, create_command, new_id, reply_command
from helpers.ops import worker_holding

UNREAD = "ticket_worker_replies_unread_total"
STALE = "ticket_worker_recent_stale_total"


def test_replies_use_the_copy_and_a_stale_copy_is_read_again(api, kafka, tickets_coll, tokens, procs):
    worker, url, partition = worker_holding(procs, kafka, COMMANDS)
    customer, admin = tokens.customer(), tokens.admin()
    ticket_id = new_id()

    def send(command):
        ((answer, _, _),) = kafka.request_many([(COMMANDS, command, ticket_id, partition)], timeout=30)
        return answer

    def counters():
        families = prom.scrape(url + "/metrics")[0]
        return prom.value(families, UNREAD), prom.value(families, STALE)

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
