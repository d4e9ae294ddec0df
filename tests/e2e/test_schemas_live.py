"""Item 10: what the service really sends validates against schemas/."""

import signal
import time

import requests

from helpers.api import (MSG_CREATED, MSG_REPLIED, SEED_CREATE_REQUEST, Api, expect_ok)
from helpers.kafka import (COMMANDS, DLQ, EVENTS, QUERIES, REPLIES, create_command, new_id,
                           reassemble)
from helpers.procs import live_processes


def _schema_check():
    import schema_check  # written beside this file (tests/e2e/schema_check.py)
    return schema_check


def test_http_bodies_validate_against_openapi(stack, api, tokens, procs):
    sc = _schema_check()
    customer = tokens.customer()
    admin = tokens.admin()
    seen = []

    def check(resp, path, method):
        sc.validate_http(path, method, resp.status_code, resp.content)
        seen.append((method, path, resp.status_code))
        return resp

    created = check(api.create_ticket(customer), "/api/ticket/create-ticket", "POST")
    ticket_id = created.json()["data"]["_id"]
    check(api.create_ticket(customer, dict(SEED_CREATE_REQUEST, priority="high")),
          "/api/ticket/create-ticket", "POST")
    check(api.get_tickets(customer), "/api/ticket/get-tickets", "GET")
    check(api.create_reply(customer, ticket_id), "/api/ticket/create-reply", "POST")
    check(api.admin_create_reply(admin, ticket_id), "/api/ticket/admin-create-reply", "POST")
    check(api.admin_get_tickets(admin), "/api/ticket/admin-get-tickets", "GET")
    # errors
    check(api.create_ticket(customer, {"category": "x"}), "/api/ticket/create-ticket", "POST")
    check(api.request("POST", "/create-ticket", customer.token, data=b"{",
                      headers={"Content-Type": "application/json"}),
          "/api/ticket/create-ticket", "POST")
    check(api.request("POST", "/create-ticket", customer.token, data=b"{}",
                      headers={"Content-Type": "text/plain"}), "/api/ticket/create-ticket", "POST")
    check(api.request("POST", "/create-ticket", customer.token,
                      data=b'{"description":"' + b"x" * 140000 + b'"}',
                      headers={"Content-Type": "application/json"}),
          "/api/ticket/create-ticket", "POST")
    check(api.request("GET", "/get-tickets"), "/api/ticket/get-tickets", "GET")
    check(api.request("GET", "/get-tickets", "garbage"), "/api/ticket/get-tickets", "GET")
    check(api.get_tickets(admin), "/api/ticket/get-tickets", "GET")
    check(api.admin_get_tickets(customer), "/api/ticket/admin-get-tickets", "GET")
    check(api.create_reply(customer, new_id()), "/api/ticket/create-reply", "POST")
    check(api.create_reply(customer, "bad"), "/api/ticket/create-reply", "POST")
    check(api.request("POST", "/create-reply", customer.token, {"description": "x"}),
          "/api/ticket/create-reply", "POST")
    check(api.request("GET", "/nope", customer.token), "/api/ticket/nope", "GET")
    check(api.request("DELETE", "/get-tickets", customer.token), "/api/ticket/get-tickets",
          "DELETE")
    for path in ("/healthz", "/readyz"):
        resp = requests.get(stack.gateway.url + path, timeout=10)
        sc.validate_http(path, "GET", resp.status_code, resp.content)
        seen.append(("GET", path, resp.status_code))

    # 504 from a gateway whose workers do not answer in time
    gateway = procs.gateway(gateway_id=2, request_timeout_ms=500)
    workers = live_processes("worker")
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        resp = Api(gateway.base).get_tickets(customer)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    check(resp, "/api/ticket/get-tickets", "GET")

    statuses = {s for _, _, s in seen}
    assert {200, 201, 400, 401, 403, 404, 405, 413, 415, 504} <= statuses, sorted(statuses)


def test_kafka_messages_validate_against_schemas(api, tokens, kafka, taps):
    sc = _schema_check()
    customer = tokens.customer()
    admin = tokens.admin()
    commands, queries = taps(COMMANDS), taps(QUERIES)
    replies, events, dlq = taps(REPLIES, [0]), taps(EVENTS), taps(DLQ)

    ticket = expect_ok(api.create_ticket(customer, dict(SEED_CREATE_REQUEST, priority="medium")),
                       201, MSG_CREATED)
    expect_ok(api.create_ticket(customer), 201, MSG_CREATED)
    replied = expect_ok(api.create_reply(customer, ticket["_id"]), 200, MSG_REPLIED)
    expect_ok(api.admin_create_reply(admin, ticket["_id"]), 200, MSG_REPLIED)
    responses = [api.get_tickets(customer), api.admin_get_tickets(admin),
                 api.create_reply(tokens.customer(), ticket["_id"])]  # 404 reply
    assert [r.status_code for r in responses] == [200, 200, 404]
    # a dead letter, from a command published by "another service"
    bad_key = new_id()
    bad = create_command(bad_key, customer.team)
    bad["ticket"]["priority"] = "whenever"
    kafka.produce(COMMANDS, bad, key=bad_key, headers={"traceparent":
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    kafka.produce(COMMANDS, b"\xff not utf-8", key=bad_key)

    # commands the gateway published: 2 creates + 2 replies of this test
    mine = lambda m: (m.json().get("actor", {}).get("team") == customer.team  # noqa: E731
                      or m.json().get("ticketId") == ticket["_id"])
    cmds = commands.wait_for(lambda m: mine(m) and "correlation-id" in m.headers, count=4,
                             what="the gateway's commands")
    kinds = set()
    for msg in cmds:
        obj = sc.validate_kafka_message(COMMANDS, msg.value, headers=msg.raw_headers, key=msg.key)
        kinds.add(obj["type"])
    assert kinds == {"ticket.create", "ticket.reply"}, kinds

    qs = queries.wait_for(lambda m: m.json()["actor"]["id"] in (customer.sub, admin.sub),
                          count=2, what="the gateway's list queries")
    for msg in qs:
        sc.validate_kafka("query.tickets.list", msg.value, headers=msg.raw_headers, key=msg.key)

    # every reply to this test's requests, reassembled
    cids = [r.headers["X-Correlation-Id"] for r in responses]
    for cid in cids:
        replies.wait_for(lambda m: m.headers.get("correlation-id") == cid, what="reply " + cid)
        obj, parts = reassemble(replies.messages, cid)
        if obj is None:
            deadline = time.monotonic() + 20
            while obj is None and time.monotonic() < deadline:
                replies.poll(0.2)
                obj, parts = reassemble(replies.messages, cid)
        assert obj is not None, "incomplete reply " + cid
        sc.validate_kafka("reply", obj, headers=parts[0].raw_headers if len(parts) == 1 else None,
                          key=parts[0].key)
        for part in parts:
            sc.validate_kafka_headers("reply", part.raw_headers)

    evs = events.wait_for(lambda m: m.json().get("teamId") == customer.team, count=4,
                          what="events of this test")
    types = set()
    for msg in evs:
        obj = sc.validate_kafka_message(EVENTS, msg.value, headers=msg.raw_headers, key=msg.key)
        types.add(obj["type"])
    assert types == {"ticket.created", "ticket.replied"}
    assert any(e.json().get("eventId") == "replied:" + replied["response"][0]["_id"] for e in evs)

    dead = dlq.wait_for(lambda m: m.key == bad_key.encode(), count=2, what="dead letters")
    for msg in dead:
        sc.validate_kafka("dlq", msg.value, headers=msg.raw_headers, key=msg.key)
    assert any("payloadBase64" in m.json() for m in dead)
    assert any(m.headers.get("traceparent", "").startswith("00-4bf92f") for m in dead)
