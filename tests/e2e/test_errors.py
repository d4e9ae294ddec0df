"""Item 4: every failure is {"success":false,"message":...} with the contract's
status, and bad input changes nothing."""

import json

import pytest
import requests
from bson import ObjectId

from helpers.api import SEED_CREATE_REQUEST, describe, expect_error
from helpers.kafka import COMMANDS, QUERIES
from helpers.wait import assert_stays

NOT_JSON = "Request body is not valid JSON"
NOT_OBJECT = "Request body must be a JSON object"
TOO_LARGE = "Request body is too large"
BAD_CTYPE = "Content-Type must be application/json"


def required(f):
    return "Field '%s' is required" % f


def not_string(f):
    return "Field '%s' must be a string" % f


def empty(f):
    return "Field '%s' must not be empty" % f


def too_long(f, n):
    return "Field '%s' must be at most %d characters" % (f, n)


def seed_with(**changes):
    body = dict(SEED_CREATE_REQUEST)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()
LIMITS = {"category": 100, "subject": 200, "description": 10000}
JSON_CT = {"Content-Type": "application/json"}


def _create_cases():
    """(id, raw body bytes, headers, status, message) for POST /create-ticket."""
    cases = []

    def add(case_id, body, message, status=400, headers=None):
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        cases.append((case_id, raw, JSON_CT if headers is None else headers, status, message))

    for field in ("category", "subject", "description"):
        add("missing-" + field, seed_with(**{field: _DROP}), required(field))
        add("null-" + field, seed_with(**{field: None}), required(field))
        add("empty-" + field, seed_with(**{field: ""}), empty(field))
        add("whitespace-" + field, seed_with(**{field: " \t\n "}), empty(field))
        add("number-" + field, seed_with(**{field: 42}), not_string(field))
        add("bool-" + field, seed_with(**{field: True}), not_string(field))
        add("array-" + field, seed_with(**{field: ["a"]}), not_string(field))
        add("object-" + field, seed_with(**{field: {"a": "b"}}), not_string(field))
        add("too-long-" + field, seed_with(**{field: "x" * (LIMITS[field] + 1)}),
            too_long(field, LIMITS[field]))
        add("too-long-multibyte-" + field, seed_with(**{field: "é" * (LIMITS[field] + 1)}),
            too_long(field, LIMITS[field]))
    add("invalid-priority", seed_with(priority="critical"),
        "Field 'priority' must be one of: low, medium, high, urgent")
    add("uppercase-priority", seed_with(priority="High"),
        "Field 'priority' must be one of: low, medium, high, urgent")
    add("unknown-field", seed_with(foo="bar"), "Unknown field 'foo'")
    add("client-sets-status", seed_with(status="closed"), "Unknown field 'status'")
    add("client-sets-id", seed_with(_id=str(ObjectId())), "Unknown field '_id'")
    add("client-sets-team", seed_with(teamId="someone-else"), "Unknown field 'teamId'")
    add("malformed-json", b'{"category": "Support", "subject": ', NOT_JSON)
    add("trailing-garbage", b'{"category":"a","subject":"b","description":"c"} x', NOT_JSON)
    add("empty-body", b"", NOT_JSON)
    add("duplicate-keys",
        b'{"category":"a","category":"b","subject":"s","description":"d"}', NOT_JSON)
    # \u0000 is valid JSON that a C string cannot hold: refused by name, not as "not JSON".
    add("nul-in-string", b'{"category":"a\\u0000b","subject":"s","description":"d"}',
        "Field 'category' must not contain NUL characters")
    add("nul-in-field-name", b'{"category":"a","subject":"s","description":"d","x\\u0000":1}',
        "Field names must not contain NUL characters")
    add("invalid-utf8", b'{"category":"\xff\xfe","subject":"s","description":"d"}', NOT_JSON)
    add("json-array", json.dumps([SEED_CREATE_REQUEST]).encode(), NOT_OBJECT)
    add("json-string", b'"hello"', NOT_OBJECT)
    add("json-number", b"42", NOT_OBJECT)
    add("json-null", b"null", NOT_OBJECT)
    add("text-plain", json.dumps(SEED_CREATE_REQUEST).encode(), BAD_CTYPE, 415,
        {"Content-Type": "text/plain"})
    add("form-urlencoded", b"category=a&subject=b&description=c", BAD_CTYPE, 415,
        {"Content-Type": "application/x-www-form-urlencoded"})
    add("no-content-type", json.dumps(SEED_CREATE_REQUEST).encode(), BAD_CTYPE, 415, {})
    big = json.dumps(seed_with(description="x" * (128 * 1024 + 1))).encode()
    add("body-over-128KiB", big, TOO_LARGE, 413)
    return cases


CREATE_CASES = _create_cases()


def _reply_cases():
    """(id, raw body, headers, status, message) for the two reply routes."""
    cases = []

    def add(case_id, body, message, status=400, headers=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        cases.append((case_id, raw, JSON_CT if headers is None else headers, status, message))

    f = "description"
    add("missing-description", {}, required(f))
    add("null-description", {f: None}, required(f))
    add("empty-description", {f: ""}, empty(f))
    add("whitespace-description", {f: "   "}, empty(f))
    add("number-description", {f: 7}, not_string(f))
    add("too-long-description", {f: "y" * 10001}, too_long(f, 10000))
    add("unknown-field", {f: "ok", "creatorType": "admin"}, "Unknown field 'creatorType'")
    add("malformed-json", b'{"description":', NOT_JSON)
    add("duplicate-keys", b'{"description":"a","description":"b"}', NOT_JSON)
    add("json-array", b'["x"]', NOT_OBJECT)
    add("text-plain", b'{"description":"a"}', BAD_CTYPE, 415, {"Content-Type": "text/plain"})
    add("body-over-128KiB", {f: "z" * (130 * 1024)}, TOO_LARGE, 413)
    return cases


REPLY_CASES = _reply_cases()

BAD_IDS = [
    ("short", "123"),
    ("not-hex", "zzzzzzzzzzzzzzzzzzzzzzzz"),
    ("25-hex", "6720b1c8f1c2b3a5e4d901301"),
    ("23-hex", "6720b1c8f1c2b3a5e4d9013"),
    ("injection", '{"$ne":null}'),
]


@pytest.fixture(scope="module")
def bad_input_team(tokens):
    """The customer every bad request of this module is sent as."""
    return tokens.customer()


@pytest.fixture(scope="module")
def reply_target(api, tokens):
    """A real ticket that the reply error cases aim at."""
    owner = tokens.customer()
    return owner, api.new_ticket(owner)


@pytest.fixture(scope="module")
def commands_watch(kafka):
    """Everything published to ticket.commands / ticket.queries while this module runs."""
    taps = [kafka.tap(COMMANDS), kafka.tap(QUERIES)]
    yield taps
    for tap in taps:
        tap.close()


def post_raw(api, path, token, raw, headers, params=None):
    all_headers = {"Authorization": "Bearer " + token}
    all_headers.update(headers)
    return requests.post(api.base + path, data=raw, headers=all_headers, params=params,
                         timeout=30)


@pytest.mark.parametrize("case_id,raw,headers,status,message", CREATE_CASES,
                         ids=[c[0] for c in CREATE_CASES])
def test_create_ticket_rejects(api, bad_input_team, commands_watch, case_id, raw, headers,
                               status, message):
    resp = post_raw(api, "/create-ticket", bad_input_team.token, raw, headers)
    expect_error(resp, status, message)


@pytest.mark.parametrize("case_id,raw,headers,status,message", REPLY_CASES,
                         ids=[c[0] for c in REPLY_CASES])
@pytest.mark.parametrize("route", ["customer", "admin"])
def test_reply_rejects(api, tokens, reply_target, commands_watch, route, case_id, raw, headers,
                       status, message):
    owner, ticket = reply_target
    if route == "customer":
        user, path = owner, "/create-reply"
    else:
        user, path = tokens.admin(), "/admin-create-reply"
    resp = post_raw(api, path, user.token, raw, headers, params={"id": ticket["_id"]})
    expect_error(resp, status, message)


@pytest.mark.parametrize("route", ["/create-reply", "/admin-create-reply"])
def test_reply_without_id_is_400(api, tokens, reply_target, commands_watch, route):
    owner, _ticket = reply_target
    user = owner if route == "/create-reply" else tokens.admin()
    resp = api.request("POST", route, user.token, {"description": "hello"})
    expect_error(resp, 400, "Query parameter 'id' is required")


@pytest.mark.parametrize("route", ["/create-reply", "/admin-create-reply"])
@pytest.mark.parametrize("case_id,bad_id", BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_reply_with_invalid_id_is_400(api, tokens, reply_target, commands_watch, route,
                                      case_id, bad_id):
    owner, _ticket = reply_target
    user = owner if route == "/create-reply" else tokens.admin()
    resp = api.request("POST", route, user.token, {"description": "hello"},
                       params={"id": bad_id})
    expect_error(resp, 400, "Invalid ticket id")


UNKNOWN_ROUTES = [
    ("GET", "/api/ticket/nope"),
    ("GET", "/api/ticket/"),
    ("GET", "/api/ticket"),
    ("GET", "/"),
    ("POST", "/api/tickets/create-ticket"),
    ("GET", "/api/ticket/get-tickets/extra"),
]


@pytest.mark.parametrize("method,path", UNKNOWN_ROUTES, ids=[r[1] for r in UNKNOWN_ROUTES])
def test_unknown_route_is_404(stack, customer, method, path):
    resp = requests.request(method, stack.gateway.url + path,
                            headers={"Authorization": "Bearer " + customer.token},
                            timeout=30)
    expect_error(resp, 404, "Route not found")


def test_unknown_route_without_token_is_404(stack):
    resp = requests.get(stack.gateway.url + "/api/ticket/nope", timeout=30)
    expect_error(resp, 404, "Route not found")


WRONG_METHODS = [
    ("GET", "/create-ticket", "POST"),
    ("PUT", "/create-ticket", "POST"),
    ("POST", "/get-tickets", "GET"),
    ("DELETE", "/get-tickets", "GET"),
    ("GET", "/create-reply", "POST"),
    ("PATCH", "/admin-create-reply", "POST"),
    ("POST", "/admin-get-tickets", "GET"),
]


@pytest.mark.parametrize("method,path,allowed", WRONG_METHODS,
                         ids=["%s %s" % (m, p) for m, p, _ in WRONG_METHODS])
def test_wrong_method_is_405_with_allow(api, customer, admin, method, path, allowed):
    user = admin if path.startswith("/admin-") else customer
    resp = api.request(method, path, user.token, headers={"Content-Type": "application/json"},
                       data=b"{}", params={"id": str(ObjectId())} if "reply" in path else None)
    expect_error(resp, 405, "Method not allowed")
    allow = [m.strip() for m in resp.headers.get("Allow", "").split(",")]
    assert allowed in allow, "Allow header %r: %s" % (resp.headers.get("Allow"), describe(resp))
    assert [m for m in allow if m in ("GET", "POST", "PUT", "PATCH", "DELETE")] == [allowed], allow


def test_bad_input_changed_nothing(api, tokens, bad_input_team, reply_target, commands_watch,
                                   tickets_coll):
    """Run last in this module: none of the bad requests above reached Kafka
    or MongoDB, and the ticket they aimed at is untouched."""
    owner, ticket = reply_target
    # The refused requests were answered synchronously; watch for a stray
    # message for a while before concluding there is none.
    def team_msgs():
        found = []
        for tap in commands_watch:
            tap.poll(0.05)
            for msg in tap.messages:
                obj = msg.try_json() or {}
                actor = obj.get("actor") or {}
                if actor.get("team") == bad_input_team.team or \
                        obj.get("ticketId") == ticket["_id"]:
                    found.append(msg)
        return found[:3]
    assert_stays(team_msgs, 2, "bad requests reached Kafka")
    assert tickets_coll.count_documents({"teamId": bad_input_team.team}) == 0
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 0 and doc["response"] == []
    assert api.list_tickets(bad_input_team) == []
    assert api.list_tickets(owner) == [ticket]
