"""Item 1: the five routes answer with the seed's bodies."""

import datetime as dt
import json
import time

from bson import ObjectId

from helpers.api import (HEX24_RE, Api, MSG_CREATED, MSG_FETCHED, MSG_REPLIED,
                         SEED_ADMIN_REPLY_REQUEST, SEED_CREATE_REQUEST,
                         SEED_CUSTOMER_REPLY_REQUEST, SEED_REPLY_KEYS, SEED_TICKET_KEYS,
                         assert_newest_first, assert_ticket_shape, describe, expect_ok,
                         find_key, format_time, parse_time)


def test_create_ticket_returns_seed_shape(api, customer):
    before = dt.datetime.now(dt.timezone.utc)
    resp = api.create_ticket(customer, dict(SEED_CREATE_REQUEST))
    after = dt.datetime.now(dt.timezone.utc)
    data = expect_ok(resp, 201, MSG_CREATED)
    # compact JSON with the seed's envelope order
    assert resp.text.startswith(
        '{"success":true,"message":"Ticket created successfullly!","data":{"_id":"'), resp.text
    assert list(data.keys()) == SEED_TICKET_KEYS
    assert_ticket_shape(data)
    assert HEX24_RE.match(data["_id"])
    assert data["creatorId"] == customer.sub
    assert data["creatorType"] == "customer"
    assert data["category"] == "Support"
    assert data["subject"] == "Account Issue"
    assert data["description"] == "I am facing an issue with my account."
    assert data["priority"] == "low"
    assert data["status"] == "created"
    assert data["response"] == []
    assert data["__v"] == 0 and type(data["__v"]) is int
    assert data["createdAt"] == data["updatedAt"]
    created = parse_time(data["createdAt"])
    assert before - dt.timedelta(seconds=2) <= created <= after + dt.timedelta(seconds=2), \
        (before, created, after)
    assert resp.headers.get("X-Correlation-Id"), resp.headers


def test_create_ticket_with_each_priority(api, customer):
    for priority in ("low", "medium", "high"):
        body = dict(SEED_CREATE_REQUEST, priority=priority)
        data = expect_ok(api.create_ticket(customer, body), 201, MSG_CREATED)
        assert_ticket_shape(data)
        assert data["priority"] == priority


def test_create_ticket_accepts_json_content_type_with_charset(api, customer):
    import json
    resp = api.request("POST", "/create-ticket", customer.token,
                       data=json.dumps(SEED_CREATE_REQUEST).encode(),
                       headers={"Content-Type": "application/json; charset=utf-8"})
    data = expect_ok(resp, 201, MSG_CREATED)
    assert data["subject"] == "Account Issue"


def test_create_ticket_stores_strings_exactly_and_counts_code_points(api, customer):
    body = {
        "category": "  Süpport ",  # no trimming
        "subject": "é" * 200,  # 200 code points (400 bytes) is within the limit
        "description": "Line 1\nLine 2\t\"quoted\" \\ back 😀 ünïcødé €",
        "priority": "medium",
    }
    data = expect_ok(api.create_ticket(customer, body), 201, MSG_CREATED)
    for field in ("category", "subject", "description", "priority"):
        assert data[field] == body[field], field
    listed = api.list_tickets(customer)
    assert listed == [data]


def test_create_ticket_at_length_limits_is_accepted(api, customer):
    body = {"category": "c" * 100, "subject": "s" * 200, "description": "d" * 10000}
    data = expect_ok(api.create_ticket(customer, body), 201, MSG_CREATED)
    assert (data["category"], data["subject"], data["description"]) == \
        (body["category"], body["subject"], body["description"])


def test_largest_valid_bodies_are_accepted_with_every_character_escaped(api, customer, admin):
    # A client may send any character as a \u escape (Python's json.dumps
    # does by default): an emoji then takes 12 bytes, and a create at every
    # length limit about 121 KiB. The body limit must not refuse what the
    # schema allows.
    emoji = "\U0001F600"
    body = {"category": emoji * 100, "subject": emoji * 200, "description": emoji * 10000,
            "priority": "urgent"}
    raw = json.dumps(body).encode()
    assert len(raw) > 120 * 1024 and b"\\ud83d\\ude00" in raw
    json_type = {"Content-Type": "application/json"}
    data = expect_ok(api.request("POST", "/create-ticket", customer.token, data=raw, headers=json_type),
                     201, MSG_CREATED)
    assert [data[f] for f in body] == list(body.values())
    for user, path in ((customer, "/create-reply"), (admin, "/admin-create-reply")):
        reply = json.dumps({"description": emoji * 10000}).encode()
        data = expect_ok(api.request("POST", path, user.token, data=reply, headers=json_type,
                                     params={"id": data["_id"]}), 200, MSG_REPLIED)
        assert data["response"][-1]["description"] == emoji * 10000
    assert len(data["response"]) == 2


def test_create_ticket_is_stored_in_mongodb(api, customer, tickets_coll):
    data = api.new_ticket(customer)
    doc = tickets_coll.find_one({"_id": ObjectId(data["_id"])})
    assert doc is not None, "ticket %s not in MongoDB" % data["_id"]
    assert isinstance(doc["_id"], ObjectId)
    assert doc["teamId"] == customer.team
    assert isinstance(doc["createdAt"], dt.datetime) and isinstance(doc["updatedAt"], dt.datetime)
    assert format_time(doc["createdAt"]) == data["createdAt"]
    assert format_time(doc["updatedAt"]) == data["updatedAt"]
    for field in ("creatorId", "creatorType", "category", "subject", "description",
                  "priority", "status", "response", "__v"):
        assert doc[field] == data[field], field


def test_get_tickets_returns_team_tickets_newest_first(api, customer):
    created = []
    for i in range(3):
        created.append(api.new_ticket(customer, dict(SEED_CREATE_REQUEST, subject="Issue %d" % i)))
        time.sleep(0.005)
    resp = api.get_tickets(customer)
    data = expect_ok(resp, 200, MSG_FETCHED)
    assert resp.text.startswith('{"success":true,"message":"Ticket fetched successfullly!",'
                                '"data":[{"_id":"'), resp.text[:200]
    assert isinstance(data, list)
    for ticket in data:
        assert list(ticket.keys()) == SEED_TICKET_KEYS
        assert_ticket_shape(ticket)
    assert [t["_id"] for t in data] == [t["_id"] for t in reversed(created)]
    assert data == list(reversed(created))
    assert_newest_first(data)


def test_get_tickets_of_empty_team_is_empty_list(api, customer):
    resp = api.get_tickets(customer)
    assert expect_ok(resp, 200, MSG_FETCHED) == []
    assert resp.text == '{"success":true,"message":"Ticket fetched successfullly!","data":[]}'


def test_customer_reply_returns_seed_shape(api, customer):
    ticket = api.new_ticket(customer)
    time.sleep(0.01)
    resp = api.create_reply(customer, ticket["_id"], dict(SEED_CUSTOMER_REPLY_REQUEST))
    data = expect_ok(resp, 200, MSG_REPLIED)
    assert resp.text.startswith(
        '{"success":true,"message":"Response added successfully!","data":{"_id":"'), resp.text
    assert list(data.keys()) == SEED_TICKET_KEYS
    assert_ticket_shape(data)
    # the ticket itself is unchanged but for response, updatedAt and __v
    for field in ("_id", "creatorId", "creatorType", "category", "subject", "description",
                  "priority", "status", "createdAt"):
        assert data[field] == ticket[field], field
    assert data["__v"] == 1
    assert len(data["response"]) == 1
    entry = data["response"][0]
    assert list(entry.keys()) == SEED_REPLY_KEYS
    assert HEX24_RE.match(entry["_id"]) and entry["_id"] != ticket["_id"]
    assert entry["creatorId"] == customer.sub
    assert entry["creatorType"] == "customer"
    assert entry["description"] == SEED_CUSTOMER_REPLY_REQUEST["description"]
    assert entry["createdAt"] == entry["updatedAt"]
    assert parse_time(entry["createdAt"]) > parse_time(ticket["createdAt"])
    assert data["updatedAt"] == entry["createdAt"]
    assert parse_time(data["updatedAt"]) > parse_time(data["createdAt"])


def test_admin_reply_returns_seed_shape(api, customer, admin):
    ticket = api.new_ticket(customer)
    time.sleep(0.005)
    first = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    time.sleep(0.005)
    resp = api.admin_create_reply(admin, ticket["_id"], dict(SEED_ADMIN_REPLY_REQUEST))
    data = expect_ok(resp, 200, MSG_REPLIED)
    assert list(data.keys()) == SEED_TICKET_KEYS
    assert_ticket_shape(data)
    assert data["creatorId"] == customer.sub and data["creatorType"] == "customer"
    assert data["__v"] == 2
    assert data["response"][0] == first["response"][0]
    entry = data["response"][1]
    assert list(entry.keys()) == SEED_REPLY_KEYS
    assert entry["creatorId"] == admin.sub
    assert entry["creatorType"] == "admin"
    assert entry["description"] == SEED_ADMIN_REPLY_REQUEST["description"]
    assert entry["_id"] != first["response"][0]["_id"]
    assert data["updatedAt"] == entry["createdAt"]
    assert parse_time(data["updatedAt"]) > parse_time(first["updatedAt"])


def test_replies_are_visible_in_lists(api, customer, admin):
    ticket = api.new_ticket(customer)
    api_reply = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    after_admin = expect_ok(api.admin_create_reply(admin, ticket["_id"]), 200, MSG_REPLIED)
    assert api_reply["__v"] == 1 and after_admin["__v"] == 2
    assert api.list_tickets(customer) == [after_admin]
    listed = [t for t in api.list_all(admin) if t["_id"] == ticket["_id"]]
    assert listed == [after_admin]


def test_reply_is_stored_in_mongodb(api, customer, tickets_coll):
    ticket = api.new_ticket(customer)
    data = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 1 and len(doc["response"]) == 1
    entry = doc["response"][0]
    assert str(entry["_id"]) == data["response"][0]["_id"]
    assert isinstance(entry["createdAt"], dt.datetime)
    assert format_time(entry["createdAt"]) == data["response"][0]["createdAt"]
    assert format_time(doc["updatedAt"]) == data["updatedAt"]
    assert doc["teamId"] == customer.team


def test_admin_list_contains_tickets_of_several_teams_newest_first(api, tokens, admin):
    a, b = tokens.customer(), tokens.customer()
    ta = api.new_ticket(a)
    tb = api.new_ticket(b)
    resp = api.admin_get_tickets(admin)
    data = expect_ok(resp, 200, MSG_FETCHED)
    ids = [t["_id"] for t in data]
    assert ta["_id"] in ids and tb["_id"] in ids
    assert ids.index(tb["_id"]) < ids.index(ta["_id"]), "newest first"
    assert [t for t in data if t["_id"] == ta["_id"]] == [ta]
    assert [t for t in data if t["_id"] == tb["_id"]] == [tb]
    for ticket in data:
        assert_ticket_shape(ticket)
    assert_newest_first(data)
    assert "teamId" not in resp.text


def test_no_team_id_in_any_body(api, customer, admin):
    ticket = api.new_ticket(customer)
    responses = [
        api.get_tickets(customer),
        api.create_reply(customer, ticket["_id"]),
        api.admin_create_reply(admin, ticket["_id"]),
        api.admin_get_tickets(admin),
    ]
    for resp in responses:
        assert resp.status_code == 200, describe(resp)
        assert customer.team not in resp.text, describe(resp)
        assert not find_key(resp.json(), "teamId"), describe(resp)
        assert not find_key(resp.json(), "team"), describe(resp)


def test_healthz_and_readyz(stack):
    import requests
    assert requests.get(stack.gateway.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(stack.gateway.url + "/readyz", timeout=5).status_code == 200


def test_paths_ignore_case_like_express(api, customer):
    """Express routes without regard to case: so does the gateway."""
    created = expect_ok(api.create_ticket(customer), 201, MSG_CREATED)
    upper = Api(api.base.replace("/api/ticket", "/API/Ticket"))
    data = expect_ok(upper.request("GET", "/Get-Tickets", customer.token), 200, MSG_FETCHED)
    assert [t["_id"] for t in data] == [created["_id"]]
