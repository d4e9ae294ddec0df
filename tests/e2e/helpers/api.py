"""HTTP client for the gateway, JWT tokens, and the seed's shapes."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from dataclasses import dataclass

import jwt
import requests
from bson import ObjectId

# --- the seed (../shared/seed/ticket-api-examples.txt) ----------------------

SEED_CREATE_REQUEST = {
    "category": "Support",
    "subject": "Account Issue",
    "description": "I am facing an issue with my account.",
}
SEED_CUSTOMER_REPLY_REQUEST = {"description": "I want to add more details about my issue."}
SEED_ADMIN_REPLY_REQUEST = {
    "description": "We are looking into your issue and will update you soon."}

# Field order exactly as the seed's response bodies show it.
SEED_ENVELOPE_KEYS = ["success", "message", "data"]
SEED_TICKET_KEYS = ["_id", "creatorId", "creatorType", "category", "subject",
                    "description", "priority", "status", "response", "createdAt",
                    "updatedAt", "__v"]
SEED_REPLY_KEYS = ["_id", "creatorId", "creatorType", "description", "createdAt",
                   "updatedAt"]
ERROR_KEYS = ["success", "message"]

MSG_CREATED = "Ticket created successfullly!"
MSG_FETCHED = "Ticket fetched successfullly!"
MSG_REPLIED = "Response added successfully!"

ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24_RE = re.compile(r"^[0-9a-f]{24}$")


def _seed_key_orders():
    """Cross-check the constants above against the seed file when it is
    reachable (shared/ beside the repo); returns nothing, raises on drift."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.normpath(os.path.join(here, "..", "..", "..", "..", "shared", "seed",
                                         "ticket-api-examples.txt"))
    if not os.path.exists(path):
        return None
    text = open(path, encoding="utf-8").read()
    decoder = json.JSONDecoder()
    bodies = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        bodies.append(obj)
        pos = end
    responses = [b for b in bodies if isinstance(b, dict) and "success" in b]
    for body in responses:
        assert list(body.keys()) == SEED_ENVELOPE_KEYS, body.keys()
        items = body["data"] if isinstance(body["data"], list) else [body["data"]]
        for ticket in items:
            assert list(ticket.keys()) == SEED_TICKET_KEYS, ticket.keys()
            for reply in ticket["response"]:
                assert list(reply.keys()) == SEED_REPLY_KEYS, reply.keys()
    return path


SEED_FILE = _seed_key_orders()


def parse_time(value):
    assert isinstance(value, str) and ISO_RE.match(value), "not an ISO ms UTC time: %r" % (value,)
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def format_time(value):
    """BSON datetime (naive UTC from pymongo) -> the API's ISO form."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (value.microsecond // 1000)


def find_key(obj, key):
    """True if `key` is a key anywhere inside obj."""
    if isinstance(obj, dict):
        return key in obj or any(find_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(find_key(v, key) for v in obj)
    return False


def assert_reply_entry_shape(entry):
    assert list(entry.keys()) == SEED_REPLY_KEYS, list(entry.keys())
    assert HEX24_RE.match(entry["_id"]), entry["_id"]
    assert isinstance(entry["creatorId"], str) and entry["creatorId"]
    assert entry["creatorType"] in ("customer", "admin")
    assert isinstance(entry["description"], str)
    parse_time(entry["createdAt"])
    parse_time(entry["updatedAt"])


def assert_ticket_shape(ticket):
    """Field names, order and types of one ticket as the seed shows it."""
    assert isinstance(ticket, dict), ticket
    assert list(ticket.keys()) == SEED_TICKET_KEYS, list(ticket.keys())
    assert HEX24_RE.match(ticket["_id"]), ticket["_id"]
    assert isinstance(ticket["creatorId"], str) and ticket["creatorId"]
    assert ticket["creatorType"] in ("customer", "admin")
    for field in ("category", "subject", "description"):
        assert isinstance(ticket[field], str) and ticket[field], (field, ticket[field])
    assert ticket["priority"] in ("low", "medium", "high", "urgent")
    assert isinstance(ticket["status"], str)
    assert isinstance(ticket["response"], list)
    for entry in ticket["response"]:
        assert_reply_entry_shape(entry)
    created = parse_time(ticket["createdAt"])
    updated = parse_time(ticket["updatedAt"])
    assert updated >= created, ticket
    assert type(ticket["__v"]) is int and ticket["__v"] == len(ticket["response"]), ticket
    assert not find_key(ticket, "teamId") and not find_key(ticket, "team"), ticket


def assert_newest_first(tickets):
    keys = [(t["createdAt"], t["_id"]) for t in tickets]
    assert keys == sorted(keys, reverse=True), "list is not newest first (createdAt desc, _id desc)"


# --- tokens -------------------------------------------------------------------

@dataclass
class User:
    sub: str
    role: str
    team: str
    token: str


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_hs256(claims, secret_bytes, header=None):
    """HS256 by hand (for keys PyJWT refuses, e.g. a PEM public key)."""
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(secret_bytes, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def unsigned_token(claims, alg="none"):
    header = {"alg": alg, "typ": "JWT"}
    return (b64url(json.dumps(header).encode()) + "." +
            b64url(json.dumps(claims).encode()) + ".")


# The issuer and audience the suite's gateways pin (JWT_ISSUER, JWT_AUDIENCE).
JWT_ISSUER = "https://id.e2e.test/"
JWT_AUDIENCE = "ticket-api"


class Tokens:
    def __init__(self, secret):
        self.secret = secret

    @staticmethod
    def claims(sub, role, team=None, exp_in=3600):
        now = int(time.time())
        claims = {"sub": sub, "role": role, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE,
                  "iat": now, "exp": now + exp_in}
        if team is not None:
            claims["team"] = team
        return claims

    def sign(self, claims, key=None, algorithm="HS256", headers=None):
        return jwt.encode(claims, key if key is not None else self.secret,
                          algorithm=algorithm, headers=headers)

    def customer(self, team=None, sub=None):
        sub = sub or str(ObjectId())
        team = team or new_team()
        return User(sub, "customer", team, self.sign(self.claims(sub, "customer", team)))

    def admin(self, sub=None, team=None):
        sub = sub or str(ObjectId())
        return User(sub, "admin", team, self.sign(self.claims(sub, "admin", team)))


def new_team():
    return "team-" + uuid.uuid4().hex[:16]


# --- HTTP ---------------------------------------------------------------------

_MISSING = object()


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.session = requests.Session()

    def request(self, method, path, token=None, body=_MISSING, data=None, headers=None,
                params=None, timeout=30, session=None):
        """One HTTP request to `base + path`; `body` is sent as JSON, `data` raw."""
        all_headers = {}
        if token is not None:
            all_headers["Authorization"] = "Bearer " + token
        if body is not _MISSING:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        sess = session or requests
        return sess.request(method, self.base + path, data=data, headers=all_headers,
                            params=params, timeout=timeout)

    def create_ticket(self, user, body=None, **kw):
        return self.request("POST", "/create-ticket", user.token,
                            dict(SEED_CREATE_REQUEST) if body is None else body, **kw)

    def get_tickets(self, user, **kw):
        return self.request("GET", "/get-tickets", user.token, **kw)

    def create_reply(self, user, ticket_id, body=None, **kw):
        return self.request("POST", "/create-reply", user.token,
                            dict(SEED_CUSTOMER_REPLY_REQUEST) if body is None else body,
                            params={"id": ticket_id}, **kw)

    def admin_get_tickets(self, user, **kw):
        return self.request("GET", "/admin-get-tickets", user.token, **kw)

    def get_ticket(self, user, ticket_id, **kw):
        return self.request("GET", "/get-ticket", user.token, params={"id": ticket_id}, **kw)

    def admin_get_ticket(self, user, ticket_id, **kw):
        return self.request("GET", "/admin-get-ticket", user.token, params={"id": ticket_id}, **kw)

    def admin_create_reply(self, user, ticket_id, body=None, **kw):
        return self.request("POST", "/admin-create-reply", user.token,
                            dict(SEED_ADMIN_REPLY_REQUEST) if body is None else body,
                            params={"id": ticket_id}, **kw)

    # convenience: successful calls returning `data`
    def new_ticket(self, user, body=None):
        return expect_ok(self.create_ticket(user, body), 201, MSG_CREATED)

    def walk(self, user, path, params=None, **kw):
        """Every page of a list, following Link: rel="next" until there is
        none. @returns (tickets, responses)."""
        tickets, responses = [], []
        resp = self.request("GET", path, user.token, params=params, **kw)
        while True:
            tickets.extend(expect_ok(resp, 200, MSG_FETCHED))
            responses.append(resp)
            link = next_link(resp)
            if link is None:
                return tickets, responses
            assert len(responses) < 10000, "a walk that does not end"
            resp = self.request("GET", link_path(self.base, link), user.token, **kw)

    def list_tickets(self, user, params=None):
        """The caller's team's tickets: every page."""
        return self.walk(user, "/get-tickets", params)[0]

    def list_all(self, admin, params=None):
        """Every ticket, as an admin: every page (of 200 unless params say:
        the whole database is many pages, each within the rate limit)."""
        return self.walk(admin, "/admin-get-tickets", dict({"limit": 200}, **(params or {})))[0]


LINK_RE = re.compile(r'^<([^>]*)>; rel="next"$')


def next_link(resp):
    """The URL of the next page (as the Link header has it), or None."""
    value = resp.headers.get("Link")
    if value is None:
        return None
    match = LINK_RE.match(value)
    assert match, "malformed Link header %r" % value
    return match.group(1)


def link_path(base, link):
    """A Link target (/api/ticket/get-tickets?...) relative to the API base."""
    prefix = "/api/ticket"
    assert link.startswith(prefix + "/"), link
    return link[len(prefix):]


def describe(resp):
    return "%s %s -> %s %s" % (resp.request.method, resp.request.url, resp.status_code,
                               resp.text[:500])


def json_body(resp):
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", \
        "Content-Type %r: %s" % (ctype, describe(resp))
    try:
        return resp.json()
    except ValueError:
        raise AssertionError("body is not JSON: %s" % describe(resp))


def expect_ok(resp, status, message):
    """Assert a success envelope; returns `data`."""
    assert resp.status_code == status, describe(resp)
    body = json_body(resp)
    assert list(body.keys()) == SEED_ENVELOPE_KEYS, describe(resp)
    assert body["success"] is True and body["message"] == message, describe(resp)
    assert not find_key(body, "teamId"), "teamId leaked: " + describe(resp)
    return body["data"]


def expect_error(resp, status, message):
    """Assert an error: exact status and exactly {"success":false,"message":m}."""
    assert resp.status_code == status, "want %d %r, got: %s" % (status, message, describe(resp))
    body = json_body(resp)
    assert body == {"success": False, "message": message}, \
        "want %r, got: %s" % (message, describe(resp))
    assert list(body.keys()) == ERROR_KEYS
    return body
