"""Item 9: lists travel through ticket.queries; a list bigger than one Kafka
message still comes back whole (chunked replies)."""

import time

import pytest

from helpers.api import (MSG_FETCHED, assert_newest_first, assert_ticket_shape, describe,
                         expect_ok)
from helpers.kafka import COMMANDS, QUERIES, REPLIES, create_command, new_id, reassemble
from helpers.wait import wait_until

TICKETS = 400
DESCRIPTION_CHARS = 9000


def _description(i):
    """9,000 code points, mostly ASCII with multi-byte characters sprinkled in,
    so chunk boundaries fall inside UTF-8 sequences; unique per ticket."""
    head = "ticket %04d: " % i
    unit = "abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ é€😀 \"q\" \\ ."
    body = (unit * (DESCRIPTION_CHARS // len(unit) + 1))[:DESCRIPTION_CHARS - len(head)]
    return head + body


@pytest.fixture
def bulk_customer(tokens, tickets_coll):
    """A customer whose team's tickets are deleted afterwards, so that the
    megabytes of this test do not slow down the database for the rest."""
    user = tokens.customer()
    yield user
    tickets_coll.delete_many({"teamId": user.team})


def test_list_of_several_megabytes_comes_back_whole(api, bulk_customer, admin, kafka,
                                                    tickets_coll, taps):
    user = bulk_customer
    ids = [new_id() for _ in range(TICKETS)]
    items = []
    for i, ticket_id in enumerate(ids):
        command = create_command(ticket_id, user.team, actor_id=user.sub,
                                 subject="bulk %04d" % i, description=_description(i))
        items.append((COMMANDS, command, ticket_id, None, None))
    started = time.monotonic()
    kafka.produce_many(items)
    wait_until(lambda: tickets_coll.count_documents({"teamId": user.team}) == TICKETS, 180,
               "all %d tickets in MongoDB" % TICKETS, interval=0.5)
    applied_in = time.monotonic() - started

    replies = taps(REPLIES, [0])
    queries = taps(QUERIES)
    started = time.monotonic()
    # the largest page (200 tickets of ~9 KB) is megabytes: several chunks
    resp = api.get_tickets(user, params={"limit": 200}, timeout=60)
    listed_in = time.monotonic() - started
    first_page = expect_ok(resp, 200, MSG_FETCHED)
    print("applied %d commands in %.1f s; listed %.1f MB in %.2f s" % (
        TICKETS, applied_in, len(resp.content) / 1e6, listed_in))
    assert len(resp.content) > 1_500_000, len(resp.content)
    assert len(first_page) == 200, "got %d tickets: %s" % (len(first_page), describe(resp)[:200])
    assert resp.headers.get("Link"), "a first page of 200 out of %d has no Link" % TICKETS
    data = api.list_tickets(user, params={"limit": 200})
    assert data[:200] == first_page
    assert len(data) == TICKETS, "got %d tickets" % len(data)
    assert {t["_id"] for t in data} == set(ids)
    for ticket in data:
        assert_ticket_shape(ticket)
        i = int(ticket["subject"].split()[1])
        assert ticket["_id"] == ids[i]
        assert ticket["description"] == _description(i), "description of ticket %d damaged" % i
        assert ticket["creatorId"] == user.sub
    assert_newest_first(data)

    # it went through ticket.queries and came back in several chunks
    cid = resp.headers.get("X-Correlation-Id")
    assert cid, resp.headers
    queries.wait_for(lambda m: m.headers.get("correlation-id") == cid, timeout=10,
                     what="the list query on ticket.queries")
    reply = wait_until(lambda: (replies.poll(0.2) or True) and reassemble(replies.messages, cid)[0],
                       20, "the chunked reply on ticket.replies")
    _obj, parts = reassemble(replies.messages, cid)
    assert len(parts) >= 2, "a %d-byte reply was not chunked" % len(resp.content)
    counts = {p.headers.get("chunk-count") for p in parts}
    assert counts == {str(len(parts))}, counts
    assert [int(p.headers["chunk-index"]) for p in parts] == list(range(len(parts)))
    assert max(len(p.value) for p in parts) <= 512 * 1024
    assert reply["status"] == 200 and reply["data"] == first_page
    assert isinstance(reply["page"]["next"], str)

    # the admin list holds them too
    everything = api.list_all(admin, params={"limit": 200})
    mine = [t for t in everything if t["_id"] in set(ids)]
    assert len(mine) == TICKETS
    assert_newest_first(everything)
