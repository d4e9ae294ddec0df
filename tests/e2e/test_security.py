"""Issue 3 items 7 and 8, the parts test_auth.py and test_errors.py do not
cover: key rotation, nbf, a token anywhere but the Authorization header,
oversized headers, MongoDB operators in bodies, query strings and claims
(stored as literal text or refused, never interpreted), deep nesting, and
header injection."""

import uuid
import secrets
import time

import jwt
import pytest
import requests
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers.api import (JWT_AUDIENCE, JWT_ISSUER, MSG_CREATED, MSG_FETCHED, MSG_REPLIED, SEED_CREATE_REQUEST, Api, Tokens,
                         describe, expect_error, expect_ok, new_team, raw_hs256, unsigned_token)
from helpers.kafka import COMMANDS
from helpers.ops import raw_post, raw_request
from helpers.procs import free_port
from helpers.wait import assert_stays

MISSING = "Authorization token is missing"
INVALID = "Invalid token"
EXPIRED = "Token has expired"
NOT_JSON = "Request body is not valid JSON"
BAD_KEY = "Header 'Idempotency-Key' must be 1 to 255 printable ASCII characters"


def claims(**overrides):
    base = {"sub": str(ObjectId()), "role": "customer", "team": new_team(),
            "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 600}
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def gateway_env(config, **extra):
    env = {"PORT": free_port(), "BIND_ADDRESS": "127.0.0.1", "KAFKA_BROKERS": config.kafka,
           "GATEWAY_ID": "1", "JWT_SECRET": None, "JWT_PUBLIC_KEY_FILE": None}
    env.update(extra)
    return env


# --- key rotation ---------------------------------------------------------------------

def test_previous_secret_is_accepted_while_keys_rotate(stack, procs, jwt_secret):
    new_secret = secrets.token_hex(32)
    gateway = procs.gateway(gateway_id=1, env={"JWT_SECRET": new_secret,
                                                "JWT_PREVIOUS_SECRET": jwt_secret})
    api = Api(gateway.base)
    new_tokens, old_tokens = Tokens(new_secret), Tokens(jwt_secret)
    expect_ok(api.create_ticket(new_tokens.customer()), 201, MSG_CREATED)
    expect_ok(api.create_ticket(old_tokens.customer()), 201, MSG_CREATED)
    expect_ok(api.admin_get_tickets(old_tokens.admin()), 200, MSG_FETCHED)
    expect_ok(api.admin_get_tickets(new_tokens.admin()), 200, MSG_FETCHED)
    # a third key, other algorithms with an accepted key, none, expiry: still refused
    for token in (Tokens("q" * 64).sign(claims()),
                  jwt.encode(claims(), jwt_secret, algorithm="HS384"),
                  jwt.encode(claims(), new_secret, algorithm="HS512"),
                  unsigned_token(claims())):
        expect_error(api.request("GET", "/get-tickets", token), 401, INVALID)
    expect_error(api.request("GET", "/get-tickets",
                             old_tokens.sign(claims(exp=int(time.time()) - 60))), 401, EXPIRED)
    gateway.stop()

    # rotation done: the old secret is no longer configured, its tokens are refused
    gateway = procs.gateway(gateway_id=1, env={"JWT_SECRET": new_secret})
    api = Api(gateway.base)
    expect_ok(api.get_tickets(new_tokens.customer()), 200, MSG_FETCHED)
    expect_error(api.get_tickets(old_tokens.customer()), 401, INVALID)


def _rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def test_previous_public_key_is_accepted_while_keys_rotate(stack, procs, tmp_path):
    old_private, old_public = _rsa_pair()
    new_private, new_public = _rsa_pair()
    (tmp_path / "old.pem").write_bytes(old_public)
    (tmp_path / "new.pem").write_bytes(new_public)
    gateway = procs.gateway(gateway_id=1, env={
        "JWT_SECRET": None, "JWT_PUBLIC_KEY_FILE": str(tmp_path / "new.pem"),
        "JWT_PREVIOUS_PUBLIC_KEY_FILE": str(tmp_path / "old.pem")})
    api = Api(gateway.base)
    for private in (new_private, old_private):
        token = jwt.encode(claims(), private, algorithm="RS256")
        expect_ok(api.request("GET", "/get-tickets", token), 200, MSG_FETCHED)
    third_private, _ = _rsa_pair()
    expect_error(api.request("GET", "/get-tickets", jwt.encode(claims(), third_private,
                                                                algorithm="RS256")), 401, INVALID)
    # algorithm confusion with either public key as an HMAC secret
    for public in (new_public, old_public):
        expect_error(api.request("GET", "/get-tickets", raw_hs256(claims(), public)), 401, INVALID)


@pytest.mark.parametrize("case", ["short-previous-secret", "previous-secret-with-key-file",
                                  "previous-key-file-with-secret", "missing-previous-key-file"])
def test_bad_previous_key_settings_refuse_to_start(procs, config, tmp_path, case):
    _private, public = _rsa_pair()
    pem = tmp_path / "key.pem"
    pem.write_bytes(public)
    env = {
        "short-previous-secret": {"JWT_SECRET": "s" * 40, "JWT_PREVIOUS_SECRET": "p" * 31},
        "previous-secret-with-key-file": {"JWT_PUBLIC_KEY_FILE": str(pem),
                                          "JWT_PREVIOUS_SECRET": "p" * 40},
        "previous-key-file-with-secret": {"JWT_SECRET": "s" * 40,
                                          "JWT_PREVIOUS_PUBLIC_KEY_FILE": str(pem)},
        "missing-previous-key-file": {"JWT_PUBLIC_KEY_FILE": str(pem),
                                      "JWT_PREVIOUS_PUBLIC_KEY_FILE": str(tmp_path / "nope.pem")},
    }[case]
    rc, output = procs.run_to_exit(config.gateway_bin, gateway_env(config, **env))
    assert rc != 0, output
    assert "JWT_PREVIOUS" in output, "the error does not name the variable:\n" + output


# --- claims -------------------------------------------------------------------------

def test_nbf_in_the_future_is_401(api, tokens):
    now = int(time.time())
    expect_error(api.request("GET", "/get-tickets", tokens.sign(claims(nbf=now + 3600))),
                 401, INVALID)
    expect_error(api.request("GET", "/admin-get-tickets",
                             tokens.sign(claims(role="admin", team=None, nbf=now + 600))),
                 401, INVALID)
    expect_error(api.request("GET", "/get-tickets", tokens.sign(claims(nbf="yesterday"))),
                 401, INVALID)
    # nbf in the past (and within the 30 s clock-skew allowance) is fine
    expect_ok(api.request("GET", "/get-tickets", tokens.sign(claims(nbf=now - 60))),
              200, MSG_FETCHED)
    expect_ok(api.request("GET", "/get-tickets", tokens.sign(claims(nbf=now + 5))),
              200, MSG_FETCHED)


@pytest.mark.parametrize("claim,value", [
    ("team", {"$ne": None}), ("sub", {"$gt": ""}), ("role", {"$in": ["admin"]}),
    ("team", ["team-a"]), ("sub", 12345),
], ids=["team-operator", "sub-operator", "role-operator", "team-array", "sub-number"])
def test_operator_objects_in_claims_are_401(api, tokens, claim, value):
    expect_error(api.request("GET", "/get-tickets", tokens.sign(claims(**{claim: value}))),
                 401, INVALID)


def test_operator_text_in_claims_is_a_literal_team(api, tokens, customer):
    """A team claim that reads like a query operator is just a team name."""
    api.new_ticket(customer)
    for team in ('{"$ne":null}', "$where", "a.b", "team-a' || '1'=='1"):
        user = tokens.customer(team=team)
        listed = expect_ok(api.get_tickets(user), 200, MSG_FETCHED)
        assert all(t["creatorId"] == user.sub for t in listed), listed
        ticket = api.new_ticket(user)
        assert ticket["_id"] in [t["_id"] for t in api.list_tickets(user)]
        # a customer of that literal team still cannot reach the other team's tickets
        assert customer.sub not in [t["creatorId"] for t in api.list_tickets(user)]


# --- where the token may be ---------------------------------------------------------

@pytest.mark.parametrize("param", ["token", "access_token", "jwt", "authorization", "Authorization"])
def test_token_only_in_query_string_is_401_missing(api, customer, param):
    value = customer.token if param.lower() != "authorization" else "Bearer " + customer.token
    resp = requests.get(api.base + "/get-tickets", params={param: value}, timeout=10)
    expect_error(resp, 401, MISSING)
    resp = requests.post(api.base + "/create-ticket", params={param: value},
                         json=SEED_CREATE_REQUEST, timeout=10)
    expect_error(resp, 401, MISSING)


def test_token_in_cookie_or_other_header_is_401_missing(api, customer):
    for headers in ({"Cookie": "token=" + customer.token},
                    {"X-Access-Token": customer.token},
                    {"Authorization": customer.token},            # no scheme
                    {"Authorization": "Token " + customer.token},
                    {"Proxy-Authorization": "Bearer " + customer.token}):
        resp = requests.get(api.base + "/get-tickets", headers=headers, timeout=10)
        expect_error(resp, 401, MISSING)


def test_token_over_8_kib_is_401_invalid(api, tokens):
    padded = tokens.sign(claims(pad="x" * 9000))
    assert len(padded) > 8192
    expect_error(api.request("GET", "/get-tickets", padded), 401, INVALID)
    expect_error(api.request("GET", "/get-tickets", "a" * 20000), 401, INVALID)


def test_oversized_authorization_header_is_refused_and_harmless(stack, api):
    """Beyond the HTTP server's header memory (libmicrohttpd, ~32 KiB) the
    request is refused before the gateway sees it: 431 Request Header Fields
    Too Large. Below it, the gateway answers 401 itself."""
    for size in (40 * 1024, 256 * 1024):
        resp = requests.get(api.base + "/get-tickets", timeout=10,
                            headers={"Authorization": "Bearer " + "a" * size})
        assert resp.status_code in (401, 431), "%d-byte header: %s" % (size, describe(resp))
        if resp.status_code == 401:
            expect_error(resp, 401, INVALID)
    assert requests.get(stack.gateway.url + "/healthz", timeout=5).status_code == 200


# --- MongoDB operators: literal text or refused -------------------------------------

LITERALS = {
    "category": "$where",
    "subject": "{\"$gt\":\"\"}",
    "description": "{\"$ne\": null, \"a.b\": 1, \"$where\": \"sleep(1000)\"} '; db.tickets.drop(); //",
}


def test_operator_strings_are_stored_literally(api, customer, admin, tickets_coll):
    ticket = expect_ok(api.create_ticket(customer, dict(LITERALS)), 201, MSG_CREATED)
    for field, text in LITERALS.items():
        assert ticket[field] == text, (field, ticket[field])
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    for field, text in LITERALS.items():
        assert doc[field] == text and isinstance(doc[field], str), (field, doc[field])
    reply_text = '{"$set": {"status": "closed"}}'
    replied = expect_ok(api.create_reply(customer, ticket["_id"], {"description": reply_text}),
                        200, MSG_REPLIED)
    assert replied["response"][0]["description"] == reply_text
    assert replied["status"] == ticket["status"], "an operator in text changed the status"
    replied = expect_ok(api.admin_create_reply(admin, ticket["_id"],
                                               {"description": "$inc"}), 200, MSG_REPLIED)
    assert replied["__v"] == 2 and replied["response"][1]["description"] == "$inc"
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert [r["description"] for r in doc["response"]] == [reply_text, "$inc"]
    assert api.list_tickets(customer)[0]["subject"] == LITERALS["subject"]


OPERATOR_BODIES = [
    ("description-gt-object", dict(SEED_CREATE_REQUEST, description={"$gt": ""}),
     "Field 'description' must be a string"),
    ("subject-where-object", dict(SEED_CREATE_REQUEST, subject={"$where": "sleep(100)"}),
     "Field 'subject' must be a string"),
    ("category-in-array", dict(SEED_CREATE_REQUEST, category={"$in": ["Support"]}),
     "Field 'category' must be a string"),
    ("priority-ne-object", dict(SEED_CREATE_REQUEST, priority={"$ne": "low"}),
     "Field 'priority' must be a string"),
    ("top-level-where", dict(SEED_CREATE_REQUEST, **{"$where": "1 == 1"}),
     "Unknown field '$where'"),
    ("top-level-set", dict(SEED_CREATE_REQUEST, **{"$set": {"status": "closed"}}),
     "Unknown field '$set'"),
    ("dotted-key", dict(SEED_CREATE_REQUEST, **{"response.0.description": "x"}),
     "Unknown field 'response.0.description'"),
    ("dollar-key-only", {"$gt": ""}, "Unknown field '$gt'"),
    ("dollar-key-first", {"$or": [{"a": 1}], **SEED_CREATE_REQUEST}, "Unknown field '$or'"),
]


@pytest.mark.parametrize("case,body,message", OPERATOR_BODIES, ids=[c[0] for c in OPERATOR_BODIES])
def test_operators_in_create_bodies_are_400(api, customer, tickets_coll, case, body, message):
    expect_error(api.create_ticket(customer, body), 400, message)
    assert tickets_coll.count_documents({"teamId": customer.team}) == 0


def test_operators_in_reply_bodies_are_400(api, customer, admin, tickets_coll):
    ticket = api.new_ticket(customer)
    for user, send in ((customer, api.create_reply), (admin, api.admin_create_reply)):
        expect_error(send(user, ticket["_id"], {"description": {"$ne": None}}), 400,
                     "Field 'description' must be a string")
        expect_error(send(user, ticket["_id"], {"description": "x", "$push": {"response": 1}}),
                     400, "Unknown field '$push'")
        expect_error(send(user, ticket["_id"], {"description": "x", "status.closed": True}),
                     400, "Unknown field 'status.closed'")
    # A barrier, not a look right away: a valid reply goes to the same
    # partition (key: ticket id) after anything the refused ones published,
    # so once it is applied, they would be too.
    expect_ok(api.create_reply(customer, ticket["_id"], {"description": "barrier"}), 200,
              MSG_REPLIED)
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 1 and [r["description"] for r in doc["response"]] == ["barrier"], doc
    assert doc["status"] == ticket["status"]


@pytest.mark.parametrize("query,message", [
    ("id[$ne]=x", "Query parameter 'id' is required"),
    ("id[$gt]=", "Query parameter 'id' is required"),
    ("id[]=6720b1c8f1c2b3a5e4d90130", "Query parameter 'id' is required"),
    ("id=$where", "Invalid ticket id"),
    ("id=%7B%22%24gt%22%3A%22%22%7D", "Invalid ticket id"),
    ("id=6720b1c8f1c2b3a5e4d9013%24", "Invalid ticket id"),
], ids=["bracket-ne", "bracket-gt", "bracket-array", "dollar-where", "json-gt", "dollar-suffix"])
def test_operators_in_the_query_string_are_refused(api, customer, admin, query, message):
    for user, path in ((customer, "/create-reply"), (admin, "/admin-create-reply")):
        resp = requests.post(api.base + path + "?" + query, json={"description": "x"},
                             headers={"Authorization": "Bearer " + user.token}, timeout=10)
        expect_error(resp, 400, message)


def test_nul_in_the_ticket_id_is_not_truncated_away(api, customer, tickets_coll):
    """`?id=<24 hex>%00junk` is not a 24-hex id: the value must not be cut at
    the NUL and taken for the valid prefix."""
    ticket = api.new_ticket(customer)
    resp = requests.post(api.base + "/create-reply?id=%s%%00junk" % ticket["_id"],
                         json={"description": "x"},
                         headers={"Authorization": "Bearer " + customer.token}, timeout=10)
    expect_error(resp, 400, "Invalid ticket id")
    assert tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})["__v"] == 0


def test_operator_like_list_query_strings_are_refused(api, tokens, customer):
    """Query parameters are checked names with literal values: anything else is
    400 naming it, never a filter that widens the scope."""
    mine = api.new_ticket(customer)
    other = tokens.customer()
    api.new_ticket(other)
    for query, name in (("teamId=%s" % other.team, "teamId"), ("teamId[$ne]=x", "teamId[$ne]"),
                        ("filter=%7B%22%24where%22%3A%221%22%7D", "filter"),
                        ("creatorId[$exists]=true", "creatorId[$exists]"), ("team=" + other.team, "team"),
                        ("$where=1", "$where")):
        resp = requests.get(api.base + "/get-tickets?" + query, timeout=10,
                            headers={"Authorization": "Bearer " + customer.token})
        expect_error(resp, 400, "Unknown query parameter '%s'" % name)
    # literal values that look like operators match nothing, and widen nothing
    for query in ("creatorId=%7B%22%24ne%22%3Anull%7D", "category=%24where", "status=open"):
        resp = requests.get(api.base + "/get-tickets?" + query, timeout=10,
                            headers={"Authorization": "Bearer " + customer.token})
        assert expect_ok(resp, 200, MSG_FETCHED) == [], query
    assert api.list_tickets(customer) == [mine]


# --- nesting ------------------------------------------------------------------------

@pytest.mark.parametrize("case,raw,message", [
    ("arrays-30000-deep", b'{"description":' + b"[" * 30000 + b"]" * 30000 + b"}", NOT_JSON),
    ("objects-10000-deep", b'{"description":' + b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}",
     NOT_JSON),
    ("arrays-1000-deep-in-field", b'{"description":' + b"[" * 1000 + b"]" * 1000 + b"}",
     "Field 'description' must be a string"),
    ("objects-1000-deep-unknown", b'{"description":"x","x":' + b'{"$a":' * 1000 + b"1" +
     b"}" * 1000 + b"}", "Unknown field 'x'"),
], ids=["arrays-30000-deep", "objects-10000-deep", "arrays-1000-deep-in-field",
        "objects-1000-deep-unknown-field"])
def test_deep_nesting_is_400(stack, api, customer, case, raw, message):
    ticket = api.new_ticket(customer)
    resp = requests.post(api.base + "/create-reply", params={"id": ticket["_id"]}, data=raw,
                         headers={"Authorization": "Bearer " + customer.token,
                                  "Content-Type": "application/json"}, timeout=30)
    expect_error(resp, 400, message)
    assert requests.get(stack.gateway.url + "/healthz", timeout=5).status_code == 200


# --- header injection ---------------------------------------------------------------

@pytest.fixture
def reply_target(api, customer, tickets_coll):
    ticket = api.new_ticket(customer)

    def replies():
        return tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})["__v"]
    return ticket, replies


def _post_reply(stack, customer, ticket, extra):
    return raw_post(stack.gateway.port, "/api/ticket/create-reply?id=" + ticket["_id"],
                    customer.token, b'{"description":"injected?"}', extra)


def test_cr_in_idempotency_key_is_400(stack, customer, reply_target):
    ticket, replies = reply_target
    resp = _post_reply(stack, customer, ticket, b"Idempotency-Key: abc\rX-Injected: 1\r\n")
    assert resp.status == 400, resp
    assert resp.json() == {"success": False, "message": BAD_KEY}, resp
    assert replies() == 0


def test_bare_lf_ends_the_header_line_and_injects_nothing(stack, customer, reply_target, taps):
    """RFC 9112 lets a server take a bare LF for the end of a header line: the
    key is then `abc` and `X-Injected` a header of its own, which the gateway
    ignores and never echoes."""
    ticket, replies = reply_target
    commands = taps(COMMANDS)
    resp = _post_reply(stack, customer, ticket, b"Idempotency-Key: abc\nX-Injected: 1\r\n")
    assert resp.status in (200, 400), resp
    assert "x-injected" not in resp.headers, resp
    if resp.status == 200:
        assert replies() == 1
        cmd = commands.wait_for(lambda m: m.json()["ticketId"] == ticket["_id"])[0]
        assert cmd.json().get("idempotencyKey") == "abc", cmd
    else:
        assert replies() == 0


@pytest.mark.parametrize("fold", [b" X-Injected: 1", b"\tmore"], ids=["space", "tab"])
def test_obs_fold_in_idempotency_key_is_400(stack, customer, reply_target, taps, fold):
    """A folded header line (obs-fold): RFC 9112 5.2 says reject it with 400
    or replace the fold by a space (which makes the key invalid, so 400
    too). It must not be applied with the key silently dropped: a retry of
    that request would then create a second reply."""
    ticket, replies = reply_target
    commands = taps(COMMANDS)
    resp = _post_reply(stack, customer, ticket, b"Idempotency-Key: abc\r\n" + fold + b"\r\n")
    if resp.status == 200:
        cmd = commands.wait_for(lambda m: m.json()["ticketId"] == ticket["_id"])[0]
        raise AssertionError("folded Idempotency-Key answered 200; the command carried "
                             "idempotencyKey=%r" % cmd.json().get("idempotencyKey"))
    assert resp.status == 400, resp
    assert replies() == 0


def test_nul_in_idempotency_key_is_refused_or_taken_as_cut(stack, customer, reply_target):
    """`abc<NUL>def`: libmicrohttpd 0.9.75 ends a header value at a NUL byte
    before the gateway sees it, so the gateway can only refuse it (400) or
    receive the key `abc`. Either way nothing is applied twice: a repeat
    under the key `abc` answers with the same reply."""
    ticket, replies = reply_target
    key = ("nul-" + uuid.uuid4().hex).encode()
    resp = _post_reply(stack, customer, ticket, b"Idempotency-Key: " + key + b"\x00def\r\n")
    assert resp.status in (200, 400), resp
    if resp.status == 400:
        assert replies() == 0
        return
    assert replies() == 1
    again = _post_reply(stack, customer, ticket, b"Idempotency-Key: " + key + b"\r\n")
    assert again.status == 200, again
    assert replies() == 1


def test_client_headers_are_not_echoed_into_the_response(stack, customer, reply_target):
    ticket, replies = reply_target
    resp = _post_reply(stack, customer, ticket,
                       b"X-Correlation-Id: attacker-chosen\r\n"
                       b"traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01\rX-Injected: 1\r\n")
    assert resp.status in (200, 400), resp
    assert "x-injected" not in resp.headers, resp
    if resp.status == 200:
        assert resp.headers.get("x-correlation-id") != "attacker-chosen", resp
        assert "\r" not in resp.headers.get("traceparent", "") and \
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" not in resp.headers.get("traceparent", ""), resp
        assert replies() == 1


def test_request_smuggling_content_length_and_chunked(stack, customer, reply_target):
    """Content-Length together with Transfer-Encoding: chunked: one request,
    never a second one smuggled in the body."""
    ticket, replies = reply_target
    inner = (b"POST /api/ticket/create-reply?id=" + ticket["_id"].encode() + b" HTTP/1.1\r\n"
             b"Host: x\r\nAuthorization: Bearer " + customer.token.encode() + b"\r\n"
             b"Content-Type: application/json\r\nContent-Length: 19\r\n\r\n"
             b'{"description":"s"}')
    body = b"0\r\n\r\n" + inner
    head = (b"POST /api/ticket/create-reply?id=" + ticket["_id"].encode() + b" HTTP/1.1\r\n"
            b"Host: x\r\nAuthorization: Bearer " + customer.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    resp = raw_request(stack.gateway.port, head + body)
    assert resp.status in (400, 411, 413), resp
    assert_stays(replies, 3, "a request smuggled in the body was applied")

