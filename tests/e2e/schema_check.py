"""Validate what the ticket service really sends against schemas/.

Offline: every schema is loaded from the repository and registered in a
`referencing` registry, so `$ref`s between files (and OpenAPI's
`#/components/...`) resolve without a network.

    validate_kafka(kind, value, headers=None, key=None)
        kind: "command.ticket.create", "command.ticket.reply", "query.tickets.list",
              "query.ticket.get", "reply", "event.ticket.created", "event.ticket.replied", "dlq"
              (a ".v1" suffix is accepted). value: dict, or the raw JSON (str/bytes).
    validate_kafka_message(topic, value, headers=None, key=None)
        picks the kind from the topic and the message's "type".
    validate_http(path, method, status, body)
        body: the parsed response JSON, or the raw text/bytes. path may carry
        the /api/ticket prefix and a query string.
    validate_http_request(path, method, body)
        a request body against the route's requestBody schema.

Each raises AssertionError with a readable message on failure. Besides the
schemas, they check what JSON Schema cannot: raw JSON has no duplicate keys,
ticket and reply-entry fields come in the contract's order, HTTP bodies are
ordered success, message, data, and (when given) Kafka keys match the contract.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
KAFKA_DIR = SCHEMAS / "kafka"
OPENAPI_PATH = SCHEMAS / "openapi.json"
OPENAPI_URI = "urn:ticket-service:openapi.json"
API_PREFIX = "/api/ticket"

KAFKA_FILES = {
    "command.ticket.create": "command.ticket.create.v1.json",
    "command.ticket.reply": "command.ticket.reply.v1.json",
    "command.ticket.update": "command.ticket.update.v1.json",
    "command.ticket.resolve": "command.ticket.resolve.v1.json",
    "query.tickets.list": "query.tickets.list.v1.json",
    "query.ticket.get": "query.ticket.get.v1.json",
    "reply": "reply.v1.json",
    "event.ticket.created": "event.ticket.created.v1.json",
    "event.ticket.replied": "event.ticket.replied.v1.json",
    "event.ticket.updated": "event.ticket.updated.v1.json",
    "event.ticket.status_changed": "event.ticket.status_changed.v1.json",
    "dlq": "dlq.v1.json",
}
HEADER_DEFS = {
    "command.ticket.create": "request",
    "command.ticket.reply": "request",
    "command.ticket.update": "request",
    "command.ticket.resolve": "request",
    "query.tickets.list": "request",
    "query.ticket.get": "request",
    "reply": "reply",
    "event.ticket.created": "event",
    "event.ticket.replied": "event",
    "event.ticket.updated": "event",
    "event.ticket.status_changed": "event",
    "dlq": "dlq",
}
TOPIC_PREFIX = {
    "ticket.commands": "command.",
    "ticket.queries": "query.",
    "ticket.events": "event.",
}

TICKET_FIELDS = ("_id", "creatorId", "creatorType", "category", "subject", "description",
                 "priority", "status", "response", "createdAt", "updatedAt", "__v")
REPLY_FIELDS = ("_id", "creatorId", "creatorType", "description", "createdAt", "updatedAt")
# Optional fields, each only when set, after the seed's (docs/contract.md).
TICKET_OPTIONAL_FIELDS = ("assigneeId", "statusChangedAt", "resolvedAt")
REPLY_OPTIONAL_FIELDS = ("internal",)


# ---------------------------------------------------------------- loading

def _load_json_file(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=None)
def _kafka_schemas() -> dict[str, dict]:
    """All schemas in schemas/kafka by file name."""
    return {p.name: _load_json_file(p) for p in sorted(KAFKA_DIR.glob("*.json"))}


@lru_cache(maxsize=None)
def openapi() -> dict:
    return _load_json_file(OPENAPI_PATH)


@lru_cache(maxsize=None)
def registry() -> Registry:
    resources = []
    for name, schema in _kafka_schemas().items():
        uri = schema.get("$id")
        assert uri, f"schemas/kafka/{name} has no $id"
        resources.append((uri, Resource.from_contents(schema, default_specification=DRAFT202012)))
    # OpenAPI 3.1 Schema Objects are JSON Schema 2020-12; registering the whole
    # document lets "#/components/schemas/..." resolve against it.
    resources.append((OPENAPI_URI, DRAFT202012.create_resource(openapi())))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def _validator_for_ref(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry())


def _kafka_uri(file_name: str) -> str:
    return _kafka_schemas()[file_name]["$id"]


# ---------------------------------------------------------------- helpers

def _reject_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise AssertionError(f"duplicate key {k!r} in JSON")
        obj[k] = v
    return obj


def parse_json(raw: str | bytes | bytearray, what: str = "value") -> Any:
    """Parse raw JSON strictly (UTF-8, no duplicate keys); AssertionError otherwise."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise AssertionError(f"{what} is not valid UTF-8: {e}") from None
    try:
        return json.loads(raw, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise AssertionError(f"{what} is not valid JSON: {e}: {raw[:200]!r}") from None


def _coerce(value: Any, what: str) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        return parse_json(value, what)
    return value


def _path_text(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "/" + "/".join(parts) if parts else "(root)"


def _leaf_errors(error) -> list:
    """For oneOf/anyOf, the errors of the branch that came closest (fewest errors, then deepest)."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not branches:
        return [error]
    best = min(branches.values(),
               key=lambda errs: (len(errs), -max(len(list(x.absolute_path)) for x in errs)))
    out = []
    for sub in best:
        out.extend(_leaf_errors(sub))
    return out


def _check(validator: Draft202012Validator, instance: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=relevance)
    if not errors:
        return
    lines = [f"{what} does not match its schema:"]
    for e in errors[:10]:
        leaves = _leaf_errors(e)
        if leaves != [e]:
            lines.append(f"  at {_path_text(e)}: matches none of the {e.validator} alternatives; the closest fails:")
        for leaf in leaves[:10]:
            message = leaf.message
            if leaf.validator == "oneOf" and not leaf.context:
                message = ("matches more than one oneOf alternative: "
                           + json.dumps(leaf.validator_value, ensure_ascii=False))
            lines.append(f"  at {_path_text(leaf)}: {message[:300]}")
    lines.append(f"  instance: {json.dumps(instance, ensure_ascii=False)[:500]}")
    raise AssertionError("\n".join(lines))


def _check_order(obj: Any, expected: tuple, what: str, optional: tuple = ()) -> None:
    """The required fields in order, then the optional ones present, in theirs."""
    if not isinstance(obj, dict) or not set(expected) <= set(obj) or not set(obj) <= set(expected + optional):
        return  # the schema check reports missing or unknown fields
    want = expected + tuple(f for f in optional if f in obj)
    if tuple(obj) != want:
        raise AssertionError(f"{what}: fields out of order: {list(obj)}; expected {list(want)}")


def check_ticket_order(ticket: Any, what: str = "ticket") -> None:
    """Fields of a ticket and of each reply entry in the contract's order."""
    _check_order(ticket, TICKET_FIELDS, what, TICKET_OPTIONAL_FIELDS)
    if isinstance(ticket, dict) and isinstance(ticket.get("response"), list):
        for i, entry in enumerate(ticket["response"]):
            _check_order(entry, REPLY_FIELDS, f"{what}.response[{i}]", REPLY_OPTIONAL_FIELDS)


def _check_data_order(data: Any, what: str) -> None:
    if isinstance(data, list):
        for i, t in enumerate(data):
            check_ticket_order(t, f"{what}[{i}]")
    else:
        check_ticket_order(data, what)


def check_ticket_invariants(ticket: dict, what: str = "ticket") -> None:
    """What the service's real tickets must satisfy beyond the schema (not applied by
    validate_*: the seed's admin-reply example shows __v 2 with one reply entry).
    __v == len(response); createdAt <= every reply's createdAt (non-decreasing) <= updatedAt."""
    replies = ticket["response"]
    if ticket["__v"] != len(replies):
        raise AssertionError(f"{what}: __v is {ticket['__v']} but it has {len(replies)} replies")
    times = [ticket["createdAt"]] + [r["createdAt"] for r in replies] + [ticket["updatedAt"]]
    if times != sorted(times):  # same fixed-width format: string order is time order
        raise AssertionError(f"{what}: times out of order: {times}")


def check_list_order(tickets: list, what: str = "list") -> None:
    """Newest first: createdAt descending, then _id descending."""
    keys = [(t["createdAt"], t["_id"]) for t in tickets]
    if keys != sorted(keys, reverse=True):
        raise AssertionError(f"{what}: not newest first (createdAt desc, _id desc): {keys[:10]}")


# ---------------------------------------------------------------- Kafka

def _normalize_kind(kind: str) -> str:
    k = kind[:-3] if kind.endswith(".v1") else kind
    if k not in KAFKA_FILES:
        raise AssertionError(f"unknown Kafka message kind {kind!r}; known: {sorted(KAFKA_FILES)}")
    return k


def _headers_dict(headers: Any) -> dict[str, str]:
    """Accept a mapping or a list of (name, value) pairs (confluent-kafka style); last value wins."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise AssertionError(f"header {name!r} is not valid UTF-8") from None
        if value is None:
            raise AssertionError(f"header {name!r} has no value")
        out[name] = value
    return out


def validate_kafka_headers(kind: str, headers: Any) -> dict[str, str]:
    k = _normalize_kind(kind)
    h = _headers_dict(headers)
    ref = _kafka_uri("headers.v1.json") + "#/$defs/" + HEADER_DEFS[k]
    _check(_validator_for_ref(ref), h, f"headers of a {k} message")
    if "chunk-index" in h and "chunk-count" in h:
        idx, cnt = int(h["chunk-index"]), int(h["chunk-count"])
        if not (cnt >= 1 and 0 <= idx < cnt):
            raise AssertionError(f"chunk-index {idx} is not in 0..chunk-count-1 (chunk-count {cnt})")
    return h


def _check_key(k: str, obj: dict, key: Any, headers: dict | None) -> None:
    if isinstance(key, (bytes, bytearray)):
        key = bytes(key).decode("utf-8", errors="replace")
    expected = None
    if k == "command.ticket.create":
        expected = obj["ticket"]["_id"]
    elif k in ("command.ticket.reply", "command.ticket.update", "command.ticket.resolve"):
        expected = obj["ticketId"]
    elif k in ("query.tickets.list", "query.ticket.get"):
        expected = "admin" if obj["actor"]["role"] == "admin" else obj["actor"].get("team")
    elif k == "event.ticket.created":
        expected = obj["ticket"]["_id"]
    elif k in ("event.ticket.replied", "event.ticket.updated", "event.ticket.status_changed"):
        expected = obj["ticketId"]
    elif k == "reply" and headers is not None:
        expected = headers.get("correlation-id")
    if expected is not None and key != expected:
        raise AssertionError(f"{k}: Kafka key is {key!r}, the contract says {expected!r}")


def validate_kafka(kind: str, value: Any, headers: Any = None, key: Any = None) -> Any:
    """Validate one Kafka message value (and optionally its headers and key).

    Returns the parsed value. For replies, pass the reassembled value of a
    chunked reply, never a single chunk.
    """
    k = _normalize_kind(kind)
    obj = _coerce(value, f"{k} message")
    _check(_validator_for_ref(_kafka_uri(KAFKA_FILES[k])), obj, f"{k} message")
    if k == "reply" and obj.get("success"):
        _check_data_order(obj.get("data"), "reply.data")
    elif k == "event.ticket.created":
        check_ticket_order(obj["ticket"], "event.ticket")
    elif k == "event.ticket.replied":
        check_ticket_order(obj["ticket"], "event.ticket")
        _check_order(obj["reply"], REPLY_FIELDS, "event.reply", REPLY_OPTIONAL_FIELDS)
        if obj["eventId"] != "replied:" + obj["reply"]["_id"]:
            raise AssertionError(f"eventId {obj['eventId']!r} is not 'replied:' + reply._id")
        if obj["ticket"]["_id"] != obj["ticketId"]:
            raise AssertionError("ticket._id differs from ticketId")
    elif k == "event.ticket.updated" and "ticket" in obj:
        check_ticket_order(obj["ticket"], "event.ticket")
        if obj["ticket"]["_id"] != obj["ticketId"]:
            raise AssertionError("ticket._id differs from ticketId")
    if k == "event.ticket.created" and obj["eventId"] != "created:" + obj["ticket"]["_id"]:
        raise AssertionError(f"eventId {obj['eventId']!r} is not 'created:' + ticket._id")
    h = validate_kafka_headers(k, headers) if headers is not None else None
    if key is not None:
        _check_key(k, obj, key, h)
    return obj


def kind_for(topic: str, value: Any) -> str:
    """The message kind for a value read from one of the service's topics."""
    if topic == "ticket.replies":
        return "reply"
    if topic == "ticket.dlq":
        return "dlq"
    prefix = TOPIC_PREFIX.get(topic)
    if prefix is None:
        raise AssertionError(f"topic {topic!r} is not one of the service's topics")
    obj = _coerce(value, f"message on {topic}")
    t = obj.get("type") if isinstance(obj, dict) else None
    kind = f"{prefix}{t}"
    if kind not in KAFKA_FILES:
        raise AssertionError(f"message on {topic} has unknown type {t!r}")
    return kind


def validate_kafka_message(topic: str, value: Any, headers: Any = None, key: Any = None) -> Any:
    obj = _coerce(value, f"message on {topic}")
    return validate_kafka(kind_for(topic, obj), obj, headers=headers, key=key)


# ---------------------------------------------------------------- HTTP

def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _route(path: str) -> str:
    route = path.split("?", 1)[0]
    if route.startswith(API_PREFIX + "/"):
        route = route[len(API_PREFIX):]
    return route


def _resolve_local(doc: dict, obj: dict, pointer: str) -> tuple[dict, str]:
    """Follow Reference Objects ("$ref": "#/...") inside the OpenAPI document."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), f"only local refs are supported, got {ref!r}"
        pointer = ref[1:]
        obj = doc
        for tok in pointer[1:].split("/"):
            obj = obj[tok.replace("~1", "/").replace("~0", "~")]
        seen += 1
        assert seen < 20, f"reference loop at {ref}"
    return obj, pointer


def _documented_response(route: str, method: str, status: int) -> tuple[dict, str]:
    doc = openapi()
    m = method.lower()
    status_key = str(status)
    item = doc["paths"].get(route)
    if item is None:
        if status == 404:
            return _resolve_local(doc, {"$ref": "#/components/responses/RouteNotFound"}, "")
        raise AssertionError(f"{method} {route}: unknown path answered {status}; "
                             "an unknown path must answer 404 'Route not found'")
    op = item.get(m)
    if op is None:
        if status == 405:
            return _resolve_local(doc, {"$ref": "#/components/responses/MethodNotAllowed"}, "")
        raise AssertionError(f"{method} {route}: method not served by the path answered {status}; "
                             "it must answer 405 'Method not allowed'")
    responses = op["responses"]
    if status_key not in responses:
        raise AssertionError(f"{method} {route}: status {status} is not documented "
                             f"(documented: {sorted(responses)})")
    pointer = f"/paths/{_escape_pointer(route)}/{m}/responses/{status_key}"
    return _resolve_local(doc, responses[status_key], pointer)


def validate_http(path: str, method: str, status: int, body: Any) -> Any:
    """Validate an HTTP response body against the OpenAPI document. Returns the parsed body."""
    route = _route(path)
    what = f"{method.upper()} {route} -> {status}"
    response, pointer = _documented_response(route, method, int(status))
    content = response.get("content")
    if not content:
        return body  # documented status without a body contract (e.g. /healthz)
    media = content.get("application/json")
    assert media is not None, f"{what}: response is not documented as application/json"
    obj = _coerce(body, f"{what} body")
    ref = f"{OPENAPI_URI}#{pointer}/content/application~1json/schema"
    _check(_validator_for_ref(ref), obj, f"{what} body")
    if isinstance(obj, dict):
        expected = ("success", "message", "data") if "data" in obj else ("success", "message")
        _check_order(obj, expected, f"{what} body")
        if obj.get("success") is True:
            _check_data_order(obj.get("data"), f"{what} data")
    return obj


def validate_http_request(path: str, method: str, body: Any) -> Any:
    """Validate a request body against the route's requestBody schema. Returns the parsed body."""
    route = _route(path)
    m = method.lower()
    what = f"{method.upper()} {route} request body"
    item = openapi()["paths"].get(route)
    op = item and item.get(m)
    if not op or "requestBody" not in op:
        raise AssertionError(f"{method.upper()} {route} takes no documented request body")
    obj = _coerce(body, what)
    pointer = f"/paths/{_escape_pointer(route)}/{m}/requestBody/content/application~1json/schema"
    _check(_validator_for_ref(f"{OPENAPI_URI}#{pointer}"), obj, what)
    return obj


def documented_routes() -> set[tuple[str, str]]:
    """(METHOD, full path) pairs the OpenAPI document describes."""
    out = set()
    for route, item in openapi()["paths"].items():
        full = route if "servers" in item else API_PREFIX + route
        for m in ("get", "post", "put", "patch", "delete", "head", "options"):
            if m in item:
                out.add((m.upper(), full))
    return out


__all__ = [
    "validate_kafka", "validate_kafka_headers", "validate_kafka_message", "kind_for",
    "validate_http", "validate_http_request", "check_ticket_order", "check_ticket_invariants",
    "check_list_order", "parse_json",
    "documented_routes", "openapi", "registry", "TICKET_FIELDS", "REPLY_FIELDS",
]
