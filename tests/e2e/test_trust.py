"""Issue 13: Kafka is not a trusted bus. Commands and queries are signed
(HMAC-SHA256, key-id), keys are limited to roles, reply addresses come from
REPLY_TOPICS, and tokens are pinned to an issuer and an audience.

Each attack below succeeds on a worker or gateway that does not check."""

import time
import uuid

import pytest
from bson import ObjectId

from helpers import signing
from helpers.api import JWT_AUDIENCE, JWT_ISSUER, MSG_CREATED, MSG_FETCHED, Api, expect_error, expect_ok
from helpers.kafka import (COMMANDS, DLQ, EVENTS, QUERIES, REPLIES, TEST_REPLY_PARTITION,
                           create_command, encode, list_query, new_id, partition_count, wait_replies)
from helpers.wait import assert_stays

UNAUTHORIZED = 401


def _send(kafka, topic, value, key, headers):
    """Produces exactly these headers (no signing by the helper)."""
    return kafka.produce_many([(topic, value, key, headers, None)], sign=False)[0]


def _reply_headers(cid, partition=TEST_REPLY_PARTITION, topic=REPLIES):
    return [("correlation-id", cid), ("reply-topic", topic), ("reply-partition", str(partition))]


def _dead_letter(dlq, at, topic=COMMANDS):
    partition, offset = at
    (dead,) = dlq.wait_for(lambda m: m.json()["source"] == {"topic": topic, "partition": partition,
                                                            "offset": offset},
                           timeout=30, what="the dead letter")
    return dead.json()["reason"]


def _assert_not_applied(tickets_coll, ticket_id, seconds=2):
    assert_stays(lambda: tickets_coll.find_one({"_id": ObjectId(ticket_id)}), seconds,
                 "a forged command was applied")


def _forged_admin_case(kafka, taps, tickets_coll, headers_for, reason_part):
    """An admin create for a team the sender does not own, with the reply
    address of the suite; returns (reason, reply)."""
    dlq = taps(DLQ)
    replies = taps(REPLIES, [TEST_REPLY_PARTITION])
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, "team-victim", role="admin"))
    at = _send(kafka, COMMANDS, value, ticket_id, headers_for(_reply_headers(cid), value))
    reason = _dead_letter(dlq, at)
    assert reason_part in reason, reason
    ((reply, _parts, _cid),) = wait_replies(replies, [cid], 20)
    assert reply["status"] == UNAUTHORIZED and reply["success"] is False, reply
    assert reply["message"] == reason
    _assert_not_applied(tickets_coll, ticket_id)


# --- forged commands --------------------------------------------------------------------

def test_unsigned_admin_command_is_dead_lettered_with_401(stack, kafka, taps, tickets_coll):
    _forged_admin_case(kafka, taps, tickets_coll, lambda headers, value: headers,
                       "message is not signed")


def test_command_signed_with_an_unknown_key_is_dead_lettered(stack, kafka, taps, tickets_coll):
    rogue = b"r" * 32
    _forged_admin_case(kafka, taps, tickets_coll,
                       lambda headers, value: signing.sign(headers, value, "rogue", rogue),
                       "unknown signing key 'rogue'")


def test_customer_only_key_cannot_claim_admin(stack, kafka, taps, tickets_coll):
    _forged_admin_case(kafka, taps, tickets_coll,
                       lambda headers, value: signing.sign(headers, value, "billing"),
                       "key 'billing' may not act as admin")


def test_customer_only_key_may_act_as_customer(stack, kafka, tickets_coll, tokens):
    user = tokens.customer()
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    with kafka.tap(REPLIES, [TEST_REPLY_PARTITION]) as replies:
        _send(kafka, COMMANDS, value, ticket_id, signing.sign(_reply_headers(cid), value, "billing"))
        ((reply, _parts, _cid),) = wait_replies(replies, [cid], 20)
    assert reply["status"] == 201 and reply["message"] == MSG_CREATED, reply
    assert tickets_coll.find_one({"_id": ObjectId(ticket_id)})["teamId"] == user.team


def test_forged_team_with_the_old_signature_is_refused(stack, kafka, taps, tickets_coll, tokens):
    """A signed customer command whose value is edited to another team."""
    dlq = taps(DLQ)
    replies = taps(REPLIES, [TEST_REPLY_PARTITION])
    user = tokens.customer()
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    headers = signing.sign(_reply_headers(cid), value)
    forged = value.replace(user.team.encode(), b"team-victim")
    assert forged != value
    at = _send(kafka, COMMANDS, forged, ticket_id, headers)
    reason = _dead_letter(dlq, at)
    assert reason.startswith("bad signature"), reason
    ((reply, _parts, _cid),) = wait_replies(replies, [cid], 20)
    assert reply["status"] == UNAUTHORIZED, reply
    _assert_not_applied(tickets_coll, ticket_id)


def test_unsigned_query_for_every_ticket_is_refused(stack, kafka, taps):
    """Reading as admin needs a signature too."""
    dlq = taps(DLQ)
    replies = taps(REPLIES, [TEST_REPLY_PARTITION])
    cid = "e2e-" + uuid.uuid4().hex
    at = _send(kafka, QUERIES, encode(list_query(role="admin")), "admin", _reply_headers(cid))
    assert "not signed" in _dead_letter(dlq, at, QUERIES)
    ((reply, _parts, _cid),) = wait_replies(replies, [cid], 20)
    assert reply["status"] == UNAUTHORIZED and "data" not in reply, reply


# --- tampered headers and replays -------------------------------------------------------

@pytest.mark.parametrize("header,new_value", [
    ("reply-partition", "0"),                  # another gateway's partition: read its answers
    ("correlation-id", "e2e-" + "0" * 32),     # answer someone else's waiting request
    ("deadline", str(int(time.time() * 1000) + 3600000)),  # added to a command
])
def test_replayed_command_with_a_tampered_header_is_refused(stack, kafka, taps, tickets_coll,
                                                            tokens, header, new_value):
    dlq = taps(DLQ)
    user = tokens.customer()
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    signed = signing.sign(_reply_headers(cid), value)
    tampered = [(k, v) for k, v in signed if k != header]
    tampered.insert(0, (header, new_value))
    at = _send(kafka, COMMANDS, value, ticket_id, tampered)
    assert _dead_letter(dlq, at).startswith("bad signature")
    _assert_not_applied(tickets_coll, ticket_id)


def test_appended_duplicate_header_breaks_the_signature(stack, kafka, taps, tickets_coll, tokens):
    """The worker acts on the last value of a header: so does the signature."""
    dlq = taps(DLQ)
    user = tokens.customer()
    ticket_id = new_id()
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    signed = signing.sign(_reply_headers("e2e-" + uuid.uuid4().hex), value)
    at = _send(kafka, COMMANDS, value, ticket_id, signed + [("reply-partition", "1")])
    assert _dead_letter(dlq, at).startswith("bad signature")
    _assert_not_applied(tickets_coll, ticket_id)


def test_exact_replay_of_a_signed_command_is_harmless(stack, kafka, tickets_coll, tokens):
    """A replay within retention passes the signature check; effect-once ids
    make it answer as the first time and store nothing twice."""
    user = tokens.customer()
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    headers = signing.sign(_reply_headers(cid), value)
    with kafka.tap(REPLIES, [TEST_REPLY_PARTITION]) as replies:
        _send(kafka, COMMANDS, value, ticket_id, headers)
        ((first, _p, _c),) = wait_replies(replies, [cid], 20)
        replies.messages.clear()
        _send(kafka, COMMANDS, value, ticket_id, headers)
        ((second, _p, _c),) = wait_replies(replies, [cid], 20)
    assert first["status"] == second["status"] == 201
    assert first["data"] == second["data"]
    assert tickets_coll.count_documents({"teamId": user.team}) == 1


# --- reply addresses --------------------------------------------------------------------

def test_foreign_reply_topic_is_never_produced_to(stack, kafka, taps, tickets_coll, tokens):
    """Signed, but aimed at ticket.events (a topic the attacker may read)."""
    dlq = taps(DLQ)
    events = taps(EVENTS)
    user = tokens.customer()
    ticket_id = new_id()
    cid = "e2e-" + uuid.uuid4().hex
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    headers = signing.sign(_reply_headers(cid, partition=0, topic=EVENTS), value)
    at = _send(kafka, COMMANDS, value, ticket_id, headers)
    assert "REPLY_TOPICS" in _dead_letter(dlq, at)
    _assert_not_applied(tickets_coll, ticket_id)

    def produced_to_events():
        events.poll(0.1)
        return [m for m in events.messages
                if m.headers.get("correlation-id") == cid or m.key == ticket_id.encode()]
    assert_stays(produced_to_events, 1, "something was produced to ticket.events")


def test_reply_partition_out_of_range_is_dead_lettered(stack, kafka, taps, tickets_coll, tokens,
                                                       config):
    dlq = taps(DLQ)
    user = tokens.customer()
    ticket_id = new_id()
    count = partition_count(config.kafka, REPLIES)
    value = encode(create_command(ticket_id, user.team, actor_id=user.sub))
    headers = signing.sign(_reply_headers("e2e-" + uuid.uuid4().hex, partition=count), value)
    at = _send(kafka, COMMANDS, value, ticket_id, headers)
    reason = _dead_letter(dlq, at)
    assert "reply-partition %d is out of range" % count in reason, reason
    _assert_not_applied(tickets_coll, ticket_id)


# --- the signing example of docs/contract.md --------------------------------------------

def test_contract_signing_example_runs_and_is_applied(stack, config, tickets_coll, tokens):
    """The Python snippet of docs/contract.md ("Signing"), run as written
    with this suite's key, produces a command the worker applies."""
    import os
    import re
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "contract.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"<!-- signing-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/contract.md lost its signing example"
    user = tokens.customer()
    ticket_id = new_id()
    secret, _roles = signing.KEYS["e2e"]
    import base64
    env = dict(os.environ, KAFKA_BROKERS=config.kafka, COMMAND_KEY_ID="e2e",
               COMMAND_KEY=base64.b64encode(secret).decode(), TICKET_ID=ticket_id,
               TEAM=user.team, ACTOR_ID=user.sub)
    done = subprocess.run([sys.executable, "-c", match.group(1)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    doc = None
    deadline = time.monotonic() + 20
    while doc is None and time.monotonic() < deadline:
        doc = tickets_coll.find_one({"_id": ObjectId(ticket_id)})
        time.sleep(0.1)
    assert doc is not None and doc["teamId"] == user.team, "the example's command was not applied"


# --- tokens -----------------------------------------------------------------------------

def _claims(**overrides):
    now = int(time.time())
    base = {"sub": str(ObjectId()), "role": "customer", "team": "team-" + uuid.uuid4().hex[:8],
            "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "iat": now, "exp": now + 600}
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


@pytest.mark.parametrize("case,overrides", [
    ("wrong-aud", {"aud": "another-app"}),
    ("wrong-aud-in-array", {"aud": ["another-app", "billing"]}),
    ("no-aud", {"aud": None}),
    ("aud-not-a-string", {"aud": 7}),
    ("wrong-iss", {"iss": "https://id.other.test/"}),
    ("no-iss", {"iss": None}),
    ("iat-in-the-future", {"iat": int(time.time()) + 3600}),
])
def test_token_not_meant_for_us_is_401(api, tokens, case, overrides):
    expect_error(api.request("GET", "/get-tickets", tokens.sign(_claims(**overrides))), 401,
                 "Invalid token")


def test_audience_in_an_array_is_accepted(api, tokens):
    token = tokens.sign(_claims(aud=["another-app", JWT_AUDIENCE]))
    expect_ok(api.request("GET", "/get-tickets", token), 200, MSG_FETCHED)


def test_token_lifetime_is_bounded(stack, procs, tokens):
    gateway = procs.gateway(gateway_id=1, env={"JWT_MAX_LIFETIME_S": 900})
    api = Api(gateway.base)
    now = int(time.time())
    expect_ok(api.request("GET", "/get-tickets", tokens.sign(_claims(iat=now, exp=now + 900))), 200,
              MSG_FETCHED)
    expect_error(api.request("GET", "/get-tickets", tokens.sign(_claims(iat=now, exp=now + 901))),
                 401, "Invalid token")
    expect_error(api.request("GET", "/get-tickets", tokens.sign(_claims(iat=None))),
                 401, "Invalid token")


def test_gateway_without_command_keys_refuses_to_start(procs, config, jwt_secret):
    from helpers.procs import free_port
    env = {"PORT": free_port(), "BIND_ADDRESS": "127.0.0.1", "KAFKA_BROKERS": config.kafka,
           "JWT_SECRET": jwt_secret, "GATEWAY_ID": 1}
    rc, output = procs.run_to_exit(config.gateway_bin, env)
    assert rc == 2 and "COMMAND_KEYS" in output, output
    env["COMMAND_KEYS"] = signing.keys_spec({"billing": (b"x" * 32, "customer")})
    rc, output = procs.run_to_exit(config.gateway_bin, env)
    assert rc == 2 and "admin+customer" in output, output
