"""Issue 10: lists in pages (limit, cursor, Link), filters, one-ticket reads
with an ETag, and queries that carry their deadline."""

import datetime as dt
import json
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId

from helpers import metrics as prom
from helpers.api import (MSG_FETCHED, MSG_REPLIED, assert_newest_first, assert_ticket_shape,
                         describe, expect_error, expect_ok, link_path, next_link)
from helpers.kafka import QUERIES, REPLIES, TEST_REPLY_PARTITION, list_query, new_id
from helpers.ops import worker_holding

INVALID_CURSOR = "Invalid cursor"
NOT_FOUND = "Ticket not found"
STATUS_VALUES = "created, open, pending, resolved, closed"


@pytest.fixture
def customer(tokens, tickets_coll):
    """A customer of a fresh team whose tickets are deleted afterwards: walks
    need many tickets, and the embedded database's lists still cost what is
    stored, so later tests must not pay for these."""
    user = tokens.customer()
    yield user
    tickets_coll.delete_many({"teamId": user.team})


def make_tickets(api, user, count, category=None, priority=None):
    made = []
    for i in range(count):
        body = {"category": category or "Support", "subject": "page %d" % i,
                "description": "ticket %d of a walk" % i}
        if priority:
            body["priority"] = priority
        made.append(api.new_ticket(user, body))
    return made


def cursor_of(resp):
    link = next_link(resp)
    assert link is not None, "no Link: " + describe(resp)
    return parse_qs(urlsplit(link).query)["cursor"][0]


def get_list(api, user, params, admin=False):
    return api.request("GET", "/admin-get-tickets" if admin else "/get-tickets", user.token,
                       params=params)


# --- pages ----------------------------------------------------------------------------

def test_full_walk_returns_every_ticket_once_newest_first(api, customer):
    made = make_tickets(api, customer, 7)
    tickets, pages = api.walk(customer, "/get-tickets", {"limit": 3})
    assert [len(expect_ok(p, 200, MSG_FETCHED)) for p in pages] == [3, 3, 1]
    assert [t["_id"] for t in tickets] == [t["_id"] for t in reversed(made)]
    assert_newest_first(tickets)
    for ticket in tickets:
        assert_ticket_shape(ticket)
    # the envelope is the seed's, the Link is RFC 8288 with the same path and limit
    for page in pages[:-1]:
        link = next_link(page)
        assert link.startswith("/api/ticket/get-tickets?limit=3&cursor="), link
        assert list(page.json().keys()) == ["success", "message", "data"]
    assert "Link" not in pages[-1].headers


def test_last_page_has_no_link_and_default_limit_is_50(api, customer):
    make_tickets(api, customer, 2)
    resp = api.get_tickets(customer)
    assert len(expect_ok(resp, 200, MSG_FETCHED)) == 2
    assert "Link" not in resp.headers
    # exactly a full page: no Link either (nothing follows)
    resp = get_list(api, customer, {"limit": 2})
    assert len(expect_ok(resp, 200, MSG_FETCHED)) == 2 and "Link" not in resp.headers
    resp = get_list(api, customer, {"limit": 1})
    assert len(expect_ok(resp, 200, MSG_FETCHED)) == 1 and next_link(resp) is not None


def test_more_than_50_tickets_take_two_default_pages(api, customer):
    make_tickets(api, customer, 52)
    resp = api.get_tickets(customer)
    assert len(expect_ok(resp, 200, MSG_FETCHED)) == 50
    assert next_link(resp).startswith("/api/ticket/get-tickets?limit=50&cursor=")
    second = api.request("GET", link_path(api.base, next_link(resp)), customer.token)
    assert len(expect_ok(second, 200, MSG_FETCHED)) == 2 and "Link" not in second.headers
    assert len(api.list_tickets(customer)) == 52


def test_tickets_of_one_millisecond_are_walked_by_id(api, customer, tickets_coll):
    """Ties on createdAt: the cursor's _id decides, none lost or repeated."""
    when = dt.datetime(2024, 10, 28, 11, 0, 0, 123000)
    ids = [ObjectId() for _ in range(7)]
    tickets_coll.insert_many([{
        "_id": oid, "creatorId": customer.sub, "creatorType": "customer", "category": "Support",
        "subject": "tie %d" % i, "description": "same millisecond", "priority": "low",
        "status": "created", "response": [], "createdAt": when, "updatedAt": when, "__v": 0,
        "teamId": customer.team} for i, oid in enumerate(ids)])
    newer = api.new_ticket(customer)
    tickets, pages = api.walk(customer, "/get-tickets", {"limit": 2})
    assert [t["_id"] for t in tickets] == [newer["_id"]] + sorted((str(i) for i in ids), reverse=True)
    assert len(pages) == 4


def test_walk_during_concurrent_creates_has_no_gaps_and_no_repeats(api, tokens, customer):
    existing = {t["_id"] for t in make_tickets(api, customer, 24)}
    writer = tokens.customer(team=customer.team)
    stop = threading.Event()
    created = []

    def create_while_walking():
        while not stop.is_set():
            resp = api.create_ticket(writer)
            if resp.status_code == 201:
                created.append(resp.json()["data"]["_id"])

    thread = threading.Thread(target=create_while_walking)
    thread.start()
    try:
        seen = []
        resp = get_list(api, customer, {"limit": 4})
        while True:
            seen.extend(t["_id"] for t in expect_ok(resp, 200, MSG_FETCHED))
            link = next_link(resp)
            if link is None:
                break
            time.sleep(0.05)  # let creates land between pages
            resp = api.request("GET", link_path(api.base, link), customer.token)
    finally:
        stop.set()
        thread.join()
    assert created, "no ticket was created during the walk"
    assert len(seen) == len(set(seen)), "a ticket came twice"
    assert existing <= set(seen), "tickets that existed at the start are missing: %r" % (
        existing - set(seen))


def test_admin_walk_and_link(api, customer, admin):
    user = customer
    made = make_tickets(api, user, 3)
    params = {"limit": 2, "team": user.team}
    tickets, pages = api.walk(admin, "/admin-get-tickets", params)
    assert [t["_id"] for t in tickets] == [t["_id"] for t in reversed(made)]
    link = next_link(pages[0])
    assert link.startswith("/api/ticket/admin-get-tickets?limit=2&cursor="), link
    assert parse_qs(urlsplit(link).query)["team"] == [user.team]


# --- cursors --------------------------------------------------------------------------

def test_tampered_cursor_is_400(api, customer):
    make_tickets(api, customer, 3)
    cursor = cursor_of(get_list(api, customer, {"limit": 1}))
    assert len(cursor) == 39 and all(c.isalnum() or c in "-_" for c in cursor), cursor
    for bad in (cursor[:-1], cursor + "A", cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:],
                "", "x" * 39, cursor.replace("-", "+").replace("_", "/") if ("-" in cursor or "_" in cursor)
                else "+" + cursor[1:], "null", "' or 1=1"):
        expect_error(get_list(api, customer, {"limit": 1, "cursor": bad}), 400, INVALID_CURSOR)
    # the genuine one still works
    expect_ok(get_list(api, customer, {"limit": 1, "cursor": cursor}), 200, MSG_FETCHED)


def test_cursor_reused_with_other_filters_or_team_is_400(api, tokens, customer, admin):
    make_tickets(api, customer, 3, category="Billing")
    resp = get_list(api, customer, {"limit": 1, "category": "Billing"})
    cursor = cursor_of(resp)
    expect_ok(get_list(api, customer, {"limit": 1, "category": "Billing", "cursor": cursor}), 200,
              MSG_FETCHED)
    # another limit is fine: the cursor is bound to the query, not the page size
    expect_ok(get_list(api, customer, {"limit": 5, "category": "Billing", "cursor": cursor}), 200,
              MSG_FETCHED)
    for other in ({}, {"category": "Support"}, {"category": "Billing,Support"},
                  {"category": "Billing", "status": "created"}, {"category": "Billing", "priority": "low"}):
        expect_error(get_list(api, customer, dict(other, limit=1, cursor=cursor)), 400, INVALID_CURSOR)
    # another team's customer, and an admin, cannot use it
    stranger = tokens.customer()
    expect_error(get_list(api, stranger, {"limit": 1, "category": "Billing", "cursor": cursor}), 400,
                 INVALID_CURSOR)
    colleague = tokens.customer(team=customer.team)
    expect_ok(get_list(api, colleague, {"limit": 1, "category": "Billing", "cursor": cursor}), 200,
              MSG_FETCHED)
    expect_error(get_list(api, admin, {"limit": 1, "category": "Billing", "cursor": cursor}, admin=True),
                 400, INVALID_CURSOR)
    # the same value order does not matter
    resp = get_list(api, customer, {"limit": 1, "category": "Billing,Support"})
    cursor = cursor_of(resp)
    expect_ok(get_list(api, customer, {"limit": 1, "category": "Support,Billing", "cursor": cursor}), 200,
              MSG_FETCHED)


# --- filters --------------------------------------------------------------------------

def ids(tickets):
    return {t["_id"] for t in tickets}


@pytest.fixture
def scratch_customer(tokens, tickets_coll):
    """A customer whose team's tickets are deleted afterwards: these tests set
    statuses and assignees behind the API's back, which other tests' schema
    checks of the admin list must not meet."""
    user = tokens.customer()
    yield user
    tickets_coll.delete_many({"teamId": user.team})


def test_every_filter_for_customers(api, tokens, scratch_customer, tickets_coll):
    customer = scratch_customer
    colleague = tokens.customer(team=customer.team)
    a = api.new_ticket(customer, {"category": "Billing", "subject": "a", "description": "a"})
    b = api.new_ticket(customer, {"category": "Support", "subject": "b", "description": "b",
                                  "priority": "high"})
    c = api.new_ticket(colleague, {"category": "Tech Help", "subject": "c", "description": "c",
                                   "priority": "medium"})
    tickets_coll.update_one({"_id": ObjectId(b["_id"])}, {"$set": {"status": "open"}})
    tickets_coll.update_one({"_id": ObjectId(c["_id"])}, {"$set": {"status": "closed"}})
    cases = [
        ({"status": "created"}, {a["_id"]}),
        ({"status": "open"}, {b["_id"]}),
        ({"status": "open,closed"}, {b["_id"], c["_id"]}),
        ({"status": "pending,resolved"}, set()),
        ({"priority": "low"}, {a["_id"]}),
        ({"priority": "high,medium"}, {b["_id"], c["_id"]}),
        ({"category": "Billing"}, {a["_id"]}),
        ({"category": "Tech Help,Billing"}, {a["_id"], c["_id"]}),
        ({"category": "billing"}, set()),
        ({"creatorId": customer.sub}, {a["_id"], b["_id"]}),
        ({"creatorId": colleague.sub}, {c["_id"]}),
        ({"creatorId": colleague.sub, "status": "closed", "priority": "medium"}, {c["_id"]}),
        ({"creatorId": colleague.sub, "status": "open"}, set()),
    ]
    for params, expected in cases:
        listed = api.list_tickets(customer, dict(params, limit=1))
        assert ids(listed) == expected, (params, listed)
        assert_newest_first(listed)


def test_admin_filters_team_and_assignee(api, tokens, admin, tickets_coll, scratch_customer):
    user = scratch_customer
    other = tokens.customer()
    mine = api.new_ticket(user)
    theirs = api.new_ticket(other)
    assigned = api.new_ticket(user)
    tickets_coll.update_one({"_id": ObjectId(assigned["_id"])}, {"$set": {"assigneeId": admin.sub}})
    assert ids(api.list_all(admin, {"team": user.team})) == {mine["_id"], assigned["_id"]}
    assert ids(api.list_all(admin, {"team": other.team})) == {theirs["_id"]}
    assert ids(api.list_all(admin, {"team": user.team, "assigneeId": "me"})) == {assigned["_id"]}
    assert ids(api.list_all(admin, {"assigneeId": admin.sub})) == {assigned["_id"]}
    assert ids(api.list_all(admin, {"team": other.team, "assigneeId": "me"})) == set()
    assert ids(api.list_all(admin, {"creatorId": other.sub, "limit": 200})) == {theirs["_id"]}


@pytest.mark.parametrize("params,message", [
    ({"colour": "red"}, "Unknown query parameter 'colour'"),
    ({"team": "team-x"}, "Unknown query parameter 'team'"),
    ({"assigneeId": "me"}, "Unknown query parameter 'assigneeId'"),
    ({"id": "6720b1c8f1c2b3a5e4d90130"}, "Unknown query parameter 'id'"),
    ({"limit": "0"}, "Query parameter 'limit' must be an integer from 1 to 200"),
    ({"limit": "201"}, "Query parameter 'limit' must be an integer from 1 to 200"),
    ({"limit": "ten"}, "Query parameter 'limit' must be an integer from 1 to 200"),
    ({"limit": ""}, "Query parameter 'limit' must be an integer from 1 to 200"),
    ({"limit": "-5"}, "Query parameter 'limit' must be an integer from 1 to 200"),
    ({"status": "done"}, "Query parameter 'status' must be one of: " + STATUS_VALUES),
    ({"status": "open,"}, "Query parameter 'status' must be one of: " + STATUS_VALUES),
    ({"status": "Open"}, "Query parameter 'status' must be one of: " + STATUS_VALUES),
    ({"priority": "critical"}, "Query parameter 'priority' must be one of: low, medium, high, urgent"),
    ({"priority": "low,critical"}, "Query parameter 'priority' must be one of: low, medium, high, urgent"),
    ({"category": ""}, "Query parameter 'category' must not be empty"),
    ({"category": "a,,b"}, "Query parameter 'category' must not be empty"),
    ({"category": "x" * 101}, "Query parameter 'category' must be at most 100 characters"),
    ({"creatorId": ""}, "Query parameter 'creatorId' must not be empty"),
    ({"creatorId": "u" * 129}, "Query parameter 'creatorId' must be at most 128 characters"),
    ({"cursor": "abc"}, INVALID_CURSOR),
])
def test_bad_list_parameters_are_400_naming_them(api, customer, params, message):
    expect_error(get_list(api, customer, params), 400, message)


def test_bad_admin_parameters_and_repeats(api, admin, customer):
    expect_error(get_list(api, admin, {"team": ""}, admin=True), 400,
                 "Query parameter 'team' must not be empty")
    expect_error(get_list(api, admin, {"assigneeId": ""}, admin=True), 400,
                 "Query parameter 'assigneeId' must not be empty")
    expect_error(get_list(api, admin, {"teamId": "x"}, admin=True), 400,
                 "Unknown query parameter 'teamId'")
    resp = api.request("GET", "/get-tickets?status=open&status=closed", customer.token)
    expect_error(resp, 400, "Query parameter 'status' must be given once")
    resp = api.request("GET", "/get-tickets?limit=5&limit=6", customer.token)
    expect_error(resp, 400, "Query parameter 'limit' must be given once")


# --- one ticket -----------------------------------------------------------------------

def test_get_ticket_own_team_with_etag(api, tokens, customer):
    ticket = api.new_ticket(customer)
    resp = api.get_ticket(customer, ticket["_id"])
    assert expect_ok(resp, 200, MSG_FETCHED) == ticket
    assert resp.headers.get("ETag") == '"0"'
    colleague = tokens.customer(team=customer.team)
    assert expect_ok(api.get_ticket(colleague, ticket["_id"]), 200, MSG_FETCHED) == ticket


def test_get_ticket_of_another_team_is_404_like_a_reply(api, tokens, customer):
    ticket = api.new_ticket(customer)
    stranger = tokens.customer()
    resp = api.get_ticket(stranger, ticket["_id"])
    expect_error(resp, 404, NOT_FOUND)
    assert "ETag" not in resp.headers
    reply = api.create_reply(stranger, ticket["_id"])
    expect_error(reply, 404, NOT_FOUND)
    assert resp.content == reply.content
    unknown = api.get_ticket(stranger, new_id())
    expect_error(unknown, 404, NOT_FOUND)
    assert unknown.content == resp.content


def test_admin_get_ticket_and_etag_changes_after_a_reply(api, customer, admin):
    ticket = api.new_ticket(customer)
    resp = api.admin_get_ticket(admin, ticket["_id"])
    assert expect_ok(resp, 200, MSG_FETCHED) == ticket
    first = resp.headers["ETag"]
    assert first == '"0"'
    replied = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    resp = api.get_ticket(customer, ticket["_id"])
    assert expect_ok(resp, 200, MSG_FETCHED) == replied
    assert resp.headers["ETag"] == '"1"' != first
    expect_ok(api.admin_create_reply(admin, ticket["_id"]), 200, MSG_REPLIED)
    assert api.admin_get_ticket(admin, ticket["_id"]).headers["ETag"] == '"2"'
    expect_error(api.admin_get_ticket(admin, new_id()), 404, NOT_FOUND)


def test_one_ticket_routes_check_id_and_role(api, customer, admin):
    ticket = api.new_ticket(customer)
    expect_error(api.request("GET", "/get-ticket", customer.token), 400,
                 "Query parameter 'id' is required")
    expect_error(api.request("GET", "/admin-get-ticket", admin.token), 400,
                 "Query parameter 'id' is required")
    expect_error(api.get_ticket(customer, "xyz"), 400, "Invalid ticket id")
    expect_error(api.get_ticket(admin, ticket["_id"]), 403, "Access denied: customers only")
    expect_error(api.admin_get_ticket(customer, ticket["_id"]), 403, "Access denied: admins only")
    expect_error(api.request("GET", "/get-ticket", params={"id": ticket["_id"]}), 401,
                 "Authorization token is missing")
    resp = api.request("POST", "/get-ticket", customer.token, params={"id": ticket["_id"]})
    expect_error(resp, 405, "Method not allowed")
    assert resp.headers["Allow"] == "GET"


# --- Kafka: other services page too; queries carry a deadline -------------------------

def test_another_service_pages_through_ticket_queries(kafka, api, customer):
    made = make_tickets(api, customer, 3)
    query = dict(list_query(customer.team, actor_id=customer.sub), page={"limit": 2},
                 filter={"status": ["created"]})
    ((first, _parts, _cid),) = kafka.request_many([(QUERIES, query, customer.team, None)])
    assert first["status"] == 200 and [t["_id"] for t in first["data"]] == [made[2]["_id"], made[1]["_id"]]
    after = first["page"]["next"]
    query["page"] = {"limit": 2, "after": after}
    ((second, _parts, _cid),) = kafka.request_many([(QUERIES, query, customer.team, None)])
    assert [t["_id"] for t in second["data"]] == [made[0]["_id"]] and "page" not in second
    # the same cursor with another filter: 400 (and a dead letter)
    query["filter"] = {"status": ["open"]}
    ((refused, _parts, _cid),) = kafka.request_many([(QUERIES, query, customer.team, None)])
    assert refused["status"] == 400 and refused["message"] == INVALID_CURSOR
    get = {"version": 1, "type": "ticket.get", "actor": {"id": customer.sub, "role": "customer",
                                                         "team": customer.team},
           "ticketId": made[0]["_id"]}
    ((one, _parts, _cid),) = kafka.request_many([(QUERIES, get, customer.team, None)])
    assert one["status"] == 200 and one["data"] == made[0] and one["etag"] == '"0"'


def test_gateway_queries_carry_a_deadline(api, customer, taps):
    queries = taps(QUERIES)
    before = int(time.time() * 1000)
    resp = api.get_tickets(customer)
    expect_ok(resp, 200, MSG_FETCHED)
    cid = resp.headers["X-Correlation-Id"]
    (msg,) = queries.wait_for(lambda m: m.headers.get("correlation-id") == cid, what="the query")
    deadline = int(msg.headers["deadline"])
    assert before + 1000 <= deadline <= int(time.time() * 1000) + 60000, deadline
    assert msg.json()["page"] == {"limit": 50}


def test_worker_skips_a_query_past_its_deadline(kafka, api, customer, taps):
    api.new_ticket(customer)
    replies = taps(REPLIES, [TEST_REPLY_PARTITION])
    expired_cid = "e2e-expired-" + uuid.uuid4().hex
    fresh_cid = "e2e-fresh-" + uuid.uuid4().hex
    query = list_query(customer.team, actor_id=customer.sub)
    now = int(time.time() * 1000)
    kafka.produce_many([
        (QUERIES, query, customer.team,
         kafka.reply_headers(expired_cid) + [("deadline", str(now - 1000))], None),
        (QUERIES, query, customer.team,
         kafka.reply_headers(fresh_cid) + [("deadline", str(now + 60000))], None),
    ])
    # the later query on the same partition is answered: the expired one was
    # passed over, not stuck; and it got no answer
    replies.wait_for(lambda m: m.headers.get("correlation-id") == fresh_cid, timeout=20,
                     what="the answer to the fresh query")
    replies.wait_quiet(1.0)
    assert not [m for m in replies.messages if m.headers.get("correlation-id") == expired_cid]


def test_expired_queries_are_counted(stack, procs, kafka, taps):
    """A worker with /metrics joins the group; an expired query sent to a
    partition it holds is skipped and counted, and the next one answered."""
    _, url, partition = worker_holding(procs, kafka, QUERIES)
    before = prom.value(prom.scrape(url + "/metrics")[0], "ticket_worker_queries_expired_total")
    assert before is not None, "ticket_worker_queries_expired_total is not exported from the start"
    replies = taps(REPLIES, [TEST_REPLY_PARTITION])
    team = "team-expired-" + new_id()
    expired_cid, fresh_cid = "e2e-" + uuid.uuid4().hex, "e2e-" + uuid.uuid4().hex
    now = int(time.time() * 1000)
    kafka.produce_many([
        (QUERIES, list_query(team), team, kafka.reply_headers(expired_cid) + [("deadline", str(now - 1))],
         partition),
        (QUERIES, list_query(team), team, kafka.reply_headers(fresh_cid) + [("deadline", str(now + 60000))],
         partition),
    ])
    replies.wait_for(lambda m: m.headers.get("correlation-id") == fresh_cid, timeout=20,
                     what="the answer to the fresh query")
    after = prom.value(prom.scrape(url + "/metrics")[0], "ticket_worker_queries_expired_total")
    assert after - before == 1, (before, after)
    assert not [m for m in replies.messages if m.headers.get("correlation-id") == expired_cid]
