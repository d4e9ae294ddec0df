"""Self-test of schemas/ and schema_check: the contract's own examples pass, broken ones fail.

Runs offline with the system python3 (jsonschema + referencing):
    python3 -m pytest tests/e2e/test_schemas_selfcheck.py
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import schema_check as sc  # noqa: E402

REPO = sc.REPO
SEED = REPO.parent / "shared" / "seed" / "ticket-api-examples.txt"
CONTRACT = REPO / "docs" / "contract.md"

# The seed's JSON bodies, in the order they appear, and what each one is.
SEED_LAYOUT = [
    ("request", "POST", "/create-ticket", None),
    ("response", "POST", "/create-ticket", 201),
    ("response", "GET", "/get-tickets", 200),
    ("request", "POST", "/create-reply?id=6720b1c8f1c2b3a5e4d90130", None),
    ("response", "POST", "/create-reply?id=6720b1c8f1c2b3a5e4d90130", 200),
    ("response", "GET", "/admin-get-tickets", 200),
    ("request", "POST", "/admin-create-reply?id=6720b1c8f1c2b3a5e4d90130", None),
    ("response", "POST", "/admin-create-reply?id=6720b1c8f1c2b3a5e4d90130", 200),
]


def _json_objects(text: str) -> list:
    """Every top-level JSON object in text that starts at the beginning of a line."""
    dec = json.JSONDecoder()
    out, i = [], 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return out
        if j > 0 and text[j - 1] != "\n":
            i = j + 1
            continue
        obj, end = dec.raw_decode(text, j)
        out.append(obj)
        i = end


@pytest.fixture(scope="module")
def seed_blocks():
    if not SEED.exists():
        pytest.fail(f"the user's API examples are missing: {SEED}")
    blocks = _json_objects(SEED.read_text(encoding="utf-8"))
    assert len(blocks) == len(SEED_LAYOUT), f"expected {len(SEED_LAYOUT)} JSON bodies in the seed, found {len(blocks)}"
    return blocks


@pytest.fixture(scope="module")
def seed_ticket(seed_blocks):
    return seed_blocks[1]["data"]


@pytest.fixture(scope="module")
def seed_replied_ticket(seed_blocks):
    return seed_blocks[7]["data"]


@pytest.fixture(scope="module")
def contract_messages(seed_ticket, seed_replied_ticket):
    """The example Kafka values of docs/contract.md, placeholders filled from the seed."""
    text = CONTRACT.read_text(encoding="utf-8")
    kafka = text[text.index("## Kafka"):]
    blocks = re.findall(r"```json\n(.*?)```", kafka, re.S)
    msgs = []
    for block in blocks:
        block = block.replace("{...ticket...}", json.dumps(seed_ticket))
        block = block.replace("{...reply entry...}", json.dumps(seed_replied_ticket["response"][0]))
        block = block.replace('"id":"..."', '"id":"671fa1c8f1c2b3a5e4d90001"')
        msgs.extend(_json_objects(block))
    return msgs


def _kind(msg: dict) -> str:
    if "reason" in msg:
        return "dlq"
    if "status" in msg:
        return "reply"
    t = msg["type"]
    if t in ("ticket.create", "ticket.reply", "ticket.update", "ticket.resolve"):
        return "command." + t
    if t in ("tickets.list", "ticket.get"):
        return "query." + t
    return "event." + t


def _fails(fn, *args, match: str | None = None, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    if match:
        assert re.search(match, str(info.value)), str(info.value)
    return str(info.value)


# ------------------------------------------------------------ schema files

def test_every_kafka_schema_is_valid_2020_12_with_id():
    for path in sorted(sc.KAFKA_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        assert schema["$id"].endswith("/" + path.name), path.name


def _refs(node, out):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.append(node["$ref"])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)
    return out


def test_every_ref_resolves_offline():
    reg = sc.registry()
    for path in sorted(sc.KAFKA_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resolver = reg.resolver(base_uri=schema["$id"])
        for ref in _refs(schema, []):
            resolver.lookup(ref)  # raises if unresolvable
    resolver = reg.resolver(base_uri=sc.OPENAPI_URI)
    for ref in _refs(sc.openapi(), []):
        resolver.lookup(ref)


def test_openapi_document_is_valid_openapi_3_1():
    # pinned in tests/requirements.txt: a missing validator fails, never skips
    import openapi_spec_validator as validator
    doc = sc.openapi()
    assert doc["openapi"].startswith("3.1")
    validator.validate(doc)


def test_openapi_routes_are_the_five_plus_health():
    assert sc.documented_routes() == {
        ("POST", "/api/ticket/create-ticket"),
        ("GET", "/api/ticket/get-tickets"),
        ("POST", "/api/ticket/create-reply"),
        ("GET", "/api/ticket/admin-get-tickets"),
        ("POST", "/api/ticket/admin-create-reply"),
        ("GET", "/api/ticket/get-ticket"),
        ("GET", "/api/ticket/admin-get-ticket"),
        ("POST", "/api/ticket/admin-update-ticket"),
        ("POST", "/api/ticket/resolve-ticket"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/ticket/openapi.json"),
    }


def test_openapi_and_kafka_agree_on_ticket_and_reply():
    defs = json.loads((sc.KAFKA_DIR / "defs.json").read_text(encoding="utf-8"))["$defs"]
    comps = sc.openapi()["components"]["schemas"]
    for oas, kafka, order, optional in (("Ticket", "ticket", sc.TICKET_FIELDS, sc.TICKET_OPTIONAL_FIELDS),
                                        ("Reply", "replyEntry", sc.REPLY_FIELDS, sc.REPLY_OPTIONAL_FIELDS)):
        assert tuple(comps[oas]["properties"]) == order + optional
        assert tuple(defs[kafka]["properties"]) == order + optional
        assert tuple(comps[oas]["required"]) == order
        assert tuple(defs[kafka]["required"]) == order
        assert comps[oas]["additionalProperties"] is False and defs[kafka]["additionalProperties"] is False


def test_post_routes_document_idempotency_key_and_422():
    doc = sc.openapi()
    for route, item in doc["paths"].items():
        if "post" not in item:
            continue
        params = [p.get("$ref", "") for p in item["post"].get("parameters", [])]
        assert "#/components/parameters/IdempotencyKey" in params, route
        assert "422" in item["post"]["responses"], route
    key = doc["components"]["parameters"]["IdempotencyKey"]
    assert key["in"] == "header" and key["name"] == "Idempotency-Key" and key["required"] is False


def test_readme_lists_every_schema_file():
    readme = (sc.SCHEMAS / "README.md").read_text(encoding="utf-8")
    for path in sorted(sc.SCHEMAS.rglob("*.json")):
        assert path.name in readme, f"schemas/README.md does not mention {path.name}"


# ------------------------------------------------------------ seed (HTTP)

@pytest.mark.parametrize("index", range(len(SEED_LAYOUT)))
def test_seed_bodies_are_valid(seed_blocks, index):
    what, method, path, status = SEED_LAYOUT[index]
    body = seed_blocks[index]
    if what == "request":
        sc.validate_http_request(path, method, body)
    else:
        sc.validate_http("/api/ticket" + path, method, status, body)
        sc.validate_http(path, method, status, json.dumps(body))  # raw text too


def _contract_status_rows():
    text = CONTRACT.read_text(encoding="utf-8")
    http = text[text.index("## HTTP"):text.index("## Kafka")]
    return re.findall(r"^\| (\d{3}) \| `([^`]*)` \|", http, re.M)


def test_every_status_and_message_of_the_contract_table_is_documented():
    rows = _contract_status_rows()
    assert len(rows) >= 25, rows
    candidates = [(m.upper(), "/api/ticket" + r) for m, r in
                  [("post", "/create-ticket"), ("get", "/get-tickets"), ("post", "/create-reply"),
                   ("get", "/admin-get-tickets"), ("post", "/admin-create-reply"),
                   ("post", "/admin-update-ticket"), ("post", "/resolve-ticket")]]
    candidates += [("GET", "/api/ticket/no-such-route"), ("GET", "/api/ticket/create-ticket")]
    for status, message in rows:
        status = int(status)
        body = {"success": status < 400, "message": message}
        if status < 400:
            continue  # success rows are covered by the seed bodies
        accepted = []
        for method, path in candidates:
            try:
                sc.validate_http(path, method, status, body)
                accepted.append((method, path))
            except AssertionError:
                pass
        assert accepted, f"no route documents {status} {message!r}"


# ------------------------------------------------------------ contract.md (Kafka)

def test_contract_examples_are_valid(contract_messages):
    kinds = [_kind(m) for m in contract_messages]
    assert sorted(set(kinds)) == sorted(sc.KAFKA_FILES), kinds
    for msg, kind in zip(contract_messages, kinds):
        sc.validate_kafka(kind, msg)
        sc.validate_kafka(kind + ".v1", json.dumps(msg).encode())


def test_contract_examples_by_topic(contract_messages):
    topic = {"command": "ticket.commands", "query": "ticket.queries", "event": "ticket.events",
             "reply": "ticket.replies", "dlq": "ticket.dlq"}
    for msg in contract_messages:
        sc.validate_kafka_message(topic[_kind(msg).split(".")[0]], msg)


def test_keys_follow_the_contract(contract_messages):
    create = next(m for m in contract_messages if m.get("type") == "ticket.create")
    sc.validate_kafka("command.ticket.create", create, key=b"6720b1c8f1c2b3a5e4d90130")
    _fails(sc.validate_kafka, "command.ticket.create", create, key="team-a", match="Kafka key")
    query = next(m for m in contract_messages if m.get("type") == "tickets.list")
    sc.validate_kafka("query.tickets.list", query, key="team-a")
    _fails(sc.validate_kafka, "query.tickets.list", query, key="admin", match="Kafka key")


# ------------------------------------------------------------ invalid Kafka values

def _msg(contract_messages, kind):
    return copy.deepcopy(next(m for m in contract_messages if _kind(m) == kind))


def _mutations():
    def drop(path):
        def f(m):
            *head, last = path
            node = m
            for p in head:
                node = node[p]
            del node[last]
        return f

    def setv(path, value):
        def f(m):
            *head, last = path
            node = m
            for p in head:
                node = node[p]
            node[last] = value
        return f

    return [
        ("command.ticket.create", "missing ticket.subject", drop(["ticket", "subject"])),
        ("command.ticket.create", "extra top-level field", setv(["extra"], 1)),
        ("command.ticket.create", "extra ticket field", setv(["ticket", "status"], "created")),
        ("command.ticket.create", "uppercase ticket id", setv(["ticket", "_id"], "6720B1C8F1C2B3A5E4D90130")),
        ("command.ticket.create", "23-character ticket id", setv(["ticket", "_id"], "6720b1c8f1c2b3a5e4d9013")),
        ("command.ticket.create", "customer without team", drop(["actor", "team"])),
        ("command.ticket.create", "unknown role", setv(["actor", "role"], "agent")),
        ("command.ticket.create", "empty subject", setv(["ticket", "subject"], "")),
        ("command.ticket.create", "whitespace subject", setv(["ticket", "subject"], " \t ")),
        ("command.ticket.create", "subject over 200", setv(["ticket", "subject"], "x" * 201)),
        ("command.ticket.create", "bad priority", setv(["ticket", "priority"], "critical")),
        ("command.ticket.create", "version 2", setv(["version"], 2)),
        ("command.ticket.create", "version as string", setv(["version"], "1")),
        ("command.ticket.create", "actor id over 128", setv(["actor", "id"], "u" * 129)),
        ("command.ticket.reply", "missing reply", drop(["reply"])),
        ("command.ticket.reply", "bad ticketId", setv(["ticketId"], "not-an-id")),
        ("command.ticket.reply", "description over 10000", setv(["reply", "description"], "d" * 10001)),
        ("command.ticket.reply", "wrong type", setv(["type"], "ticket.create")),
        ("query.tickets.list", "filter status not a list", setv(["filter"], {"status": "created"})),
        ("query.tickets.list", "filter status unknown", setv(["filter"], {"status": ["done"]})),
        ("query.tickets.list", "filter unknown member", setv(["filter"], {"teamId": "team-a"})),
        ("query.tickets.list", "customer filters by team", setv(["filter"], {"team": "team-b"})),
        ("query.tickets.list", "page limit 0", setv(["page"], {"limit": 0})),
        ("query.tickets.list", "page limit 201", setv(["page"], {"limit": 201})),
        ("query.tickets.list", "page cursor not base64url", setv(["page"], {"after": "x" * 38 + "="})),
        ("query.tickets.list", "missing actor", drop(["actor"])),
        ("reply", "success without data", drop(["data"])),
        ("reply", "201 with the list message", setv(["message"], "Ticket fetched successfullly!")),
        ("reply", "corrected spelling", setv(["message"], "Ticket created successfully!")),
        ("reply", "ticket missing __v", drop(["data", "__v"])),
        ("reply", "ticket with teamId shown", setv(["data", "teamId"], "team-a")),
        ("reply", "bad createdAt", setv(["data", "createdAt"], "2024-10-28T11:00:00Z")),
        ("reply", "negative __v", setv(["data", "__v"], -1)),
        ("reply", "unknown status", setv(["data", "status"], "Created")),
        ("event.ticket.created", "missing teamId", drop(["teamId"])),
        ("event.ticket.created", "eventId of another ticket", setv(["eventId"], "created:6720b1c8f1c2b3a5e4d90131")),
        ("event.ticket.created", "bad occurredAt", setv(["occurredAt"], "2024-10-28 11:00:00.000Z")),
        ("event.ticket.replied", "reply entry with extra field", setv(["reply", "teamId"], "team-a")),
        ("event.ticket.replied", "eventId with created prefix", setv(["eventId"], "created:6720b473f1c2b3a5e4d90132")),
        ("dlq", "both payload and payloadBase64", setv(["payloadBase64"], "AAE=")),
        ("dlq", "neither payload", drop(["payload"])),
        ("dlq", "negative offset", setv(["source", "offset"], -1)),
        ("dlq", "missing reason", drop(["reason"])),
    ]


@pytest.mark.parametrize("kind,label,mutate", _mutations(), ids=[f"{k}:{lbl}" for k, lbl, _ in _mutations()])
def test_invalid_kafka_values_fail(contract_messages, kind, label, mutate):
    msg = _msg(contract_messages, kind)
    sc.validate_kafka(kind, msg)  # the unmodified example passes
    mutate(msg)
    _fails(sc.validate_kafka, kind, msg)


def test_reply_failure_and_admin_actor_variants(contract_messages):
    failure = {"version": 1, "status": 400, "success": False, "message": "Field 'ticket.subject' is required"}
    sc.validate_kafka("reply", failure)
    _fails(sc.validate_kafka, "reply", dict(failure, data=None))
    _fails(sc.validate_kafka, "reply", dict(failure, status=200))
    query = _msg(contract_messages, "query.tickets.list")
    query["actor"] = {"id": "671fb1d8f1c2b3a5e4d90050", "role": "admin"}
    sc.validate_kafka("query.tickets.list", query, key="admin")


def test_dlq_base64_variant(contract_messages):
    dlq = _msg(contract_messages, "dlq")
    del dlq["payload"]
    dlq["payloadBase64"] = "/w=="
    sc.validate_kafka("dlq", dlq)
    dlq["payloadBase64"] = "not base64!"
    _fails(sc.validate_kafka, "dlq", dlq)


def test_raw_values_are_parsed_strictly(contract_messages):
    _fails(sc.validate_kafka, "query.tickets.list",
           b'{"version":1,"version":1,"type":"tickets.list","actor":{"id":"u","role":"admin"}}',
           match="duplicate key")
    _fails(sc.validate_kafka, "query.tickets.list", b"\xff\xfe", match="UTF-8")
    _fails(sc.validate_kafka, "query.tickets.list", "{not json", match="not valid JSON")
    _fails(sc.validate_kafka, "nonsense", {}, match="unknown Kafka message kind")


def test_ticket_field_order_is_checked(contract_messages):
    reply = _msg(contract_messages, "reply")
    data = reply["data"]
    reply["data"] = {k: data[k] for k in reversed(list(data))}
    _fails(sc.validate_kafka, "reply", reply, match="out of order")


# ------------------------------------------------------------ headers

def test_headers_valid_and_invalid(contract_messages):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    create = _msg(contract_messages, "command.ticket.create")
    ok = [("correlation-id", b"gw0-000001"), ("reply-topic", b"ticket.replies"),
          ("reply-partition", b"0"), ("traceparent", tp.encode()), ("x-other-service", b"kept"),
          ("key-id", b"gateway"), ("signature", b"0" * 64)]
    signed = {"key-id": "gateway", "signature": "0" * 64}
    sc.validate_kafka("command.ticket.create", create, headers=ok, key="6720b1c8f1c2b3a5e4d90130")
    sc.validate_kafka("command.ticket.create", create, headers=signed)  # no reply address: applied, not answered
    _fails(sc.validate_kafka_headers, "command.ticket.create", {})  # unsigned: dead-lettered
    _fails(sc.validate_kafka_headers, "command.ticket.create", dict(signed, signature="0" * 63))
    _fails(sc.validate_kafka_headers, "command.ticket.create", dict(signed, **{"reply-topic": "ticket.replies"}))
    _fails(sc.validate_kafka_headers, "command.ticket.create",
           {"correlation-id": "c1", "reply-topic": "ticket.replies", "reply-partition": "-1"})
    _fails(sc.validate_kafka_headers, "command.ticket.create", {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    _fails(sc.validate_kafka_headers, "command.ticket.create", {"correlation-id": "has space"})

    reply = _msg(contract_messages, "reply")
    sc.validate_kafka("reply", reply, headers={"correlation-id": "c1"}, key="c1")
    _fails(sc.validate_kafka, "reply", reply, headers={"correlation-id": "c1"}, key="c2", match="Kafka key")
    _fails(sc.validate_kafka_headers, "reply", {})
    sc.validate_kafka_headers("reply", {"correlation-id": "c1", "chunk-index": "2", "chunk-count": "3"})
    _fails(sc.validate_kafka_headers, "reply", {"correlation-id": "c1", "chunk-index": "3", "chunk-count": "3"})
    _fails(sc.validate_kafka_headers, "reply", {"correlation-id": "c1", "chunk-index": "0"})


# ------------------------------------------------------------ invalid HTTP bodies

def test_invalid_http_bodies_fail(seed_blocks):
    created = seed_blocks[1]
    listed = seed_blocks[2]

    def with_data(body, **changes):
        b = copy.deepcopy(body)
        b["data"].update(changes)
        return b

    cases = [
        ("POST", "/create-ticket", 201, {k: v for k, v in created.items() if k != "data"}),
        ("POST", "/create-ticket", 201, dict(created, extra=True)),
        ("POST", "/create-ticket", 201, with_data(created, _id="6720b1c8f1c2b3a5e4d9013z")),
        ("POST", "/create-ticket", 201, with_data(created, teamId="team-a")),
        ("POST", "/create-ticket", 201, dict(created, message="Ticket created successfully!")),
        ("POST", "/create-ticket", 200, created),  # create answers 201
        ("POST", "/create-ticket", 500, {"success": False, "message": "Internal error"}),
        ("GET", "/get-tickets", 200, dict(listed, data=listed["data"][0])),
        ("GET", "/get-tickets", 200, dict(listed, success="true")),
        ("GET", "/admin-get-tickets", 403, {"success": False, "message": "Access denied: customers only"}),
        ("GET", "/get-tickets", 401, {"success": False, "message": "Unauthorized"}),
        ("GET", "/get-tickets", 401, {"success": False, "message": "Invalid token", "data": None}),
        ("POST", "/create-reply", 404, {"success": False, "message": "Route not found"}),
        ("POST", "/create-ticket", 400, {"success": False, "message": "Invalid ticket id"}),
        ("POST", "/create-ticket", 400, {"success": False, "message": "Field 'subject' must be at most 100 characters"}),
        ("GET", "/no-such-route", 400, {"success": False, "message": "Route not found"}),
        ("DELETE", "/create-ticket", 404, {"success": False, "message": "Route not found"}),
        ("POST", "/create-ticket", 503, ""),
    ]
    for method, path, status, body in cases:
        _fails(sc.validate_http, path, method, status, body)


def test_http_order_and_raw_parsing(seed_blocks):
    created = seed_blocks[1]
    reordered = {"message": created["message"], "success": True, "data": created["data"]}
    _fails(sc.validate_http, "/create-ticket", "POST", 201, reordered, match="out of order")
    raw = json.dumps(created)
    _fails(sc.validate_http, "/create-ticket", "POST", 201, raw.replace('"success": true', '"success": true, "success": true'),
           match="duplicate key")


def test_invalid_request_bodies_fail(seed_blocks):
    create = seed_blocks[0]
    for body in ({k: v for k, v in create.items() if k != "subject"},
                 dict(create, foo=1),
                 dict(create, subject=""),
                 dict(create, subject="   "),
                 dict(create, category="c" * 101),
                 dict(create, priority="critical"),
                 dict(create, description=5),
                 [create]):
        _fails(sc.validate_http_request, "/create-ticket", "POST", body)
    sc.validate_http_request("/create-ticket", "POST", dict(create, priority="high"))
    sc.validate_http_request("/create-ticket", "POST", dict(create, subject="é" * 200))  # code points, not bytes
    _fails(sc.validate_http_request, "/create-reply", "POST", {"description": "x", "ticketId": "6720b1c8f1c2b3a5e4d90130"})
    _fails(sc.validate_http_request, "/get-tickets", "GET", {})


# ------------------------------------------------------------ invariants beyond the schema

def test_ticket_invariants_and_list_order(seed_blocks):
    ticket = copy.deepcopy(seed_blocks[4]["data"])  # one customer reply, __v 1
    sc.check_ticket_invariants(ticket)
    _fails(sc.check_ticket_invariants, dict(ticket, __v=2), match="__v")
    _fails(sc.check_ticket_invariants, dict(ticket, updatedAt="2024-10-28T10:59:59.999Z"), match="out of order")
    older = dict(ticket, _id="6720b1c8f1c2b3a5e4d90100", createdAt="2024-10-27T11:00:00.000Z")
    same_time_lower_id = dict(ticket, _id="6720b1c8f1c2b3a5e4d90001")
    sc.check_list_order([ticket, same_time_lower_id, older])
    _fails(sc.check_list_order, [older, ticket], match="newest first")
    _fails(sc.check_list_order, [same_time_lower_id, ticket], match="newest first")


def test_every_example_in_openapi_matches_its_schema():
    doc = sc.openapi()
    checked = 0
    for route, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post"):
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            for example in body.get("examples", {}).values():
                sc.validate_http_request(route, method, example["value"])
                checked += 1
            for status, response in op["responses"].items():
                response, _ = sc._resolve_local(doc, response, "")
                media = response.get("content", {}).get("application/json", {})
                for example in media.get("examples", {}).values():
                    sc.validate_http(route, method, int(status), example["value"])
                    checked += 1
    for name, schema in doc["components"]["schemas"].items():
        for example in schema.get("examples", []):
            validator = sc._validator_for_ref(f"{sc.OPENAPI_URI}#/components/schemas/{name}")
            assert not list(validator.iter_errors(example)), f"example of {name} does not match it"
            checked += 1
    assert checked > 50, checked
