"""Issue 3 item 5: client retries with Idempotency-Key on the POST routes.

Same user + same key + same content -> the first answer again (same ticket /
reply id, nothing applied twice), also after the first attempt got 504; same
key with other content -> 422; keys belong to one user; malformed key -> 400."""

import json
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from bson import ObjectId

from helpers import metrics as prom
from helpers.api import (MSG_CREATED, MSG_REPLIED, SEED_CREATE_REQUEST, Api,
                         expect_error, expect_ok)
from helpers.kafka import COMMANDS
from helpers.ops import repo_root
from helpers.procs import live_processes
from helpers.wait import wait_until

KEY_REUSED = "Idempotency-Key was already used with a different request body"
BAD_KEY = "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters"
TIMEOUT = "No worker answered in time"


def new_key():
    return "e2e-" + uuid.uuid4().hex


def key_header(key):
    return {"Idempotency-Key": key}


def team_docs(tickets_coll, team):
    return list(tickets_coll.find({"teamId": team}))


# --- repeats ------------------------------------------------------------------------

def test_repeated_create_returns_the_same_ticket_and_stores_one(api, customer, tickets_coll):
    key = new_key()
    first = expect_ok(api.create_ticket(customer, headers=key_header(key)), 201, MSG_CREATED)
    for _ in range(2):
        again = expect_ok(api.create_ticket(customer, headers=key_header(key)), 201, MSG_CREATED)
        assert again == first, "repeat answered %r, first %r" % (again, first)
    docs = team_docs(tickets_coll, customer.team)
    assert [str(d["_id"]) for d in docs] == [first["_id"]]
    assert api.list_tickets(customer) == [first]
    # without a key, the same body is a new ticket
    other = expect_ok(api.create_ticket(customer), 201, MSG_CREATED)
    assert other["_id"] != first["_id"]


@pytest.mark.parametrize("route", ["customer", "admin"])
def test_repeated_reply_returns_the_same_reply_and_stores_one(api, customer, admin, tickets_coll,
                                                              route):
    ticket = api.new_ticket(customer)
    key = new_key()
    if route == "customer":
        send = lambda: api.create_reply(customer, ticket["_id"], headers=key_header(key))  # noqa: E731
    else:
        send = lambda: api.admin_create_reply(admin, ticket["_id"], headers=key_header(key))  # noqa: E731
    first = expect_ok(send(), 200, MSG_REPLIED)
    assert first["__v"] == 1 and len(first["response"]) == 1, first
    again = expect_ok(send(), 200, MSG_REPLIED)
    assert again == first, "repeat answered %r, first %r" % (again, first)
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 1 and len(doc["response"]) == 1, doc
    assert str(doc["response"][0]["_id"]) == first["response"][0]["_id"]


def test_concurrent_repeats_create_one_ticket(api, customer, tickets_coll):
    key = new_key()
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: api.create_ticket(customer, headers=key_header(key)),
                                  range(6)))
    datas = [expect_ok(r, 201, MSG_CREATED) for r in responses]
    ids = {d["_id"] for d in datas}
    assert len(ids) == 1, "concurrent repeats answered different tickets: %r" % ids
    assert len(team_docs(tickets_coll, customer.team)) == 1


# --- 422 ----------------------------------------------------------------------------

def test_same_key_with_another_body_is_422_and_applies_nothing(api, customer, tickets_coll):
    key = new_key()
    first = expect_ok(api.create_ticket(customer, headers=key_header(key)), 201, MSG_CREATED)
    for changed in (dict(SEED_CREATE_REQUEST, subject="Another subject"),
                    dict(SEED_CREATE_REQUEST, priority="high"),
                    dict(SEED_CREATE_REQUEST, description="I am facing an issue with my account!")):
        expect_error(api.create_ticket(customer, changed, headers=key_header(key)), 422, KEY_REUSED)
    docs = team_docs(tickets_coll, customer.team)
    assert [str(d["_id"]) for d in docs] == [first["_id"]]
    assert docs[0]["subject"] == SEED_CREATE_REQUEST["subject"] and docs[0]["priority"] == "low"
    # the original request is still answered as before
    assert expect_ok(api.create_ticket(customer, headers=key_header(key)), 201, MSG_CREATED) == first


def test_same_key_for_another_reply_or_ticket_is_422(api, customer, tickets_coll):
    ticket = api.new_ticket(customer)
    other_ticket = api.new_ticket(customer)
    key = new_key()
    expect_ok(api.create_reply(customer, ticket["_id"], headers=key_header(key)), 200, MSG_REPLIED)
    expect_error(api.create_reply(customer, ticket["_id"], {"description": "something else"},
                                  headers=key_header(key)), 422, KEY_REUSED)
    # same body, another ticket
    expect_error(api.create_reply(customer, other_ticket["_id"], headers=key_header(key)),
                 422, KEY_REUSED)
    # same key on another route
    expect_error(api.create_ticket(customer, headers=key_header(key)), 422, KEY_REUSED)
    assert tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})["__v"] == 1
    assert tickets_coll.find_one({"_id": ObjectId(other_ticket["_id"])})["__v"] == 0
    assert len(team_docs(tickets_coll, customer.team)) == 2


# --- keys belong to a user ----------------------------------------------------------

def test_keys_are_per_user(api, tokens, tickets_coll):
    key = new_key()
    alice = tokens.customer()
    bob = tokens.customer()                  # another team
    carol = tokens.customer(team=alice.team)  # alice's team, another user
    made = {}
    for user in (alice, bob, carol):
        made[user.sub] = expect_ok(api.create_ticket(user, headers=key_header(key)), 201,
                                   MSG_CREATED)
    assert len({t["_id"] for t in made.values()}) == 3, made
    assert len(team_docs(tickets_coll, alice.team)) == 2
    assert len(team_docs(tickets_coll, bob.team)) == 1
    # bob's different body under the same key is fine: it is his own key
    bob2 = tokens.customer(team=bob.team, sub=bob.sub)
    expect_error(api.create_ticket(bob2, dict(SEED_CREATE_REQUEST, subject="x"),
                                   headers=key_header(key)), 422, KEY_REUSED)
    assert made[alice.sub]["creatorId"] == alice.sub and made[carol.sub]["creatorId"] == carol.sub


# --- after a 504 --------------------------------------------------------------------

def _stop_workers():
    workers = live_processes("worker")
    assert workers, "no worker running"
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    return workers


def _resume(workers):
    for worker in workers:
        worker.send_signal(signal.SIGCONT)


def test_repeat_after_504_returns_the_ticket_applied_late(stack, procs, tokens, tickets_coll, taps):
    gateway = procs.gateway(gateway_id=1, request_timeout_ms=1000)
    api1 = Api(gateway.base)
    user = tokens.customer()
    key = new_key()
    commands = taps(COMMANDS)
    workers = _stop_workers()
    try:
        started = time.monotonic()
        resp = api1.create_ticket(user, headers=key_header(key))
        elapsed = time.monotonic() - started
        expect_error(resp, 504, TIMEOUT)
        assert elapsed < 3, "504 after %.1f s with REQUEST_TIMEOUT_MS=1000" % elapsed
    finally:
        _resume(workers)
    # the first attempt is applied once the workers run again
    docs = wait_until(lambda: team_docs(tickets_coll, user.team), 30,
                      "the timed-out create applied after SIGCONT")
    assert len(docs) == 1
    first_id = str(docs[0]["_id"])

    again = expect_ok(api1.create_ticket(user, headers=key_header(key)), 201, MSG_CREATED)
    assert again["_id"] == first_id, "repeat answered %s, the stored ticket is %s" % (
        again["_id"], first_id)
    assert [str(d["_id"]) for d in team_docs(tickets_coll, user.team)] == [first_id]
    sent = commands.wait_for(lambda m: m.json().get("idempotencyKey") == key, count=2)
    sent_ids = [m.json()["ticket"]["_id"] for m in sent]
    assert sent_ids[0] == first_id and sent_ids[1] != first_id, \
        "the gateway sends a fresh id each time and the worker maps the repeat: %r" % sent_ids
    # the gateway counted the timeout and, when the worker answered anyway, the late reply
    def counted():
        fams, _ = prom.scrape(gateway.url + "/metrics")
        return (prom.value(fams, "ticket_gateway_request_timeouts_total") == 1 and
                prom.value(fams, "ticket_gateway_late_replies_total") == 1)
    wait_until(counted, 10, "request_timeouts_total == 1 and late_replies_total == 1")


def test_repeat_reply_after_504_applies_it_once(stack, procs, tokens, tickets_coll):
    gateway = procs.gateway(gateway_id=1, request_timeout_ms=1000)
    api1 = Api(gateway.base)
    user = tokens.customer()
    ticket = api1.new_ticket(user)
    key = new_key()
    workers = _stop_workers()
    try:
        expect_error(api1.create_reply(user, ticket["_id"], headers=key_header(key)), 504, TIMEOUT)
    finally:
        _resume(workers)
    wait_until(lambda: tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})["__v"] == 1, 30,
               "the timed-out reply applied after SIGCONT")
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    again = expect_ok(api1.create_reply(user, ticket["_id"], headers=key_header(key)), 200,
                      MSG_REPLIED)
    assert again["__v"] == 1 and len(again["response"]) == 1, again
    assert again["response"][0]["_id"] == str(doc["response"][0]["_id"])
    assert tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})["__v"] == 1


# --- malformed keys -----------------------------------------------------------------

MALFORMED_KEYS = [
    ("empty", ""),
    ("256-characters", "k" * 256),
    ("inner-space", "my key"),
    ("tab", "my\tkey"),
    ("control-char", "key\x01"),
    ("del", "key\x7f"),
    ("non-ascii-utf8", "clé".encode("utf-8")),
    ("latin1-byte", b"key\xff"),
]


@pytest.mark.parametrize("case,key", MALFORMED_KEYS, ids=[c for c, _ in MALFORMED_KEYS])
def test_malformed_key_is_400(api, customer, admin, tickets_coll, case, key):
    expect_error(api.create_ticket(customer, headers={"Idempotency-Key": key}), 400, BAD_KEY)
    expect_error(api.admin_create_reply(admin, str(ObjectId()), headers={"Idempotency-Key": key}),
                 400, BAD_KEY)
    assert team_docs(tickets_coll, customer.team) == []


def test_longest_and_punctuated_keys_are_accepted(api, customer):
    for key in ("k" * 255, "!#$%&'*+-.^_`|~:/?@[]{}()\"\\,;<=>"):
        first = expect_ok(api.create_ticket(customer, headers={"Idempotency-Key": key}), 201,
                          MSG_CREATED)
        again = expect_ok(api.create_ticket(customer, headers={"Idempotency-Key": key}), 201,
                          MSG_CREATED)
        assert again["_id"] == first["_id"], (key, first, again)


def test_openapi_documents_the_header_on_every_post(stack):
    with open("%s/schemas/openapi.json" % repo_root(), encoding="utf-8") as f:
        spec = json.load(f)
    param = spec["components"]["parameters"]["IdempotencyKey"]
    assert param["in"] == "header" and param["name"].lower() == "idempotency-key", param
    assert param["schema"].get("maxLength") == 255 and param["schema"].get("minLength") == 1
    for path, item in spec["paths"].items():
        if "post" in item:
            refs = [p.get("$ref") for p in item["post"].get("parameters", [])]
            assert "#/components/parameters/IdempotencyKey" in refs, path
            assert "422" in item["post"]["responses"], path
