"""Issue 8 (gateway side) and issue 13 item 3: the statuses and paths nothing
else triggers. Hand-made replies on the gateway's own partition of
ticket.replies (502 for a malformed reply, a status past 599, a missing,
repeated or re-counted chunk; a reply re-sent after a worker crash; a
guessed correlation id), error messages cut between UTF-8 characters on the
HTTP and the Kafka path, the malformed-header message, the per-address
connection limit, bodies not kept while requests wait, and the "unknown"
outcome of a 503 retried with the same Idempotency-Key.

The hand-made replies need requests that no worker answers first: the
session's workers are stopped (SIGSTOP) for a few seconds, well under their
6 s session timeout, as test_idempotency.py does."""

import json
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import metrics as prom
from helpers.api import MSG_CREATED, MSG_FETCHED, SEED_CREATE_REQUEST, Api, expect_error, expect_ok
from helpers.kafka import COMMANDS, DLQ, QUERIES, REPLIES, create_command, new_id
from helpers.ops import raw_post
from helpers.procs import live_processes
from helpers.wait import wait_until

INVALID_REPLY = "Invalid reply from worker"
GATEWAY_ID = 1

# A 70-byte key of 3-byte characters: a cut at 64 bytes falls inside the
# 22nd character; the message keeps the first 21.
KEY_70 = "\u20ac" * 23 + "x"
KEY_CUT = "\u20ac" * 21


def _stop_workers():
    workers = live_processes("worker")
    assert workers, "no worker running"
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    return workers


def _resume(workers):
    for worker in workers:
        worker.send_signal(signal.SIGCONT)


def _reply(status=200, data=None, message=MSG_FETCHED):
    body = {"version": 1, "status": status, "success": 200 <= status < 300, "message": message}
    if data is not None:
        body["data"] = data
    return json.dumps(body, separators=(",", ":")).encode()


def _thirds(value):
    third = len(value) // 3
    return [value[:third], value[third:2 * third], value[2 * third:]]


def _chunk(payload, index, count):
    return (payload, {"chunk-index": str(index), "chunk-count": str(count)})


def _other_id(cid):
    """The correlation id a forger would guess: one digit off."""
    return cid[:-1] + ("1" if cid[-1] == "0" else "0")


# Each scenario: the messages produced for the waiting request (payload, extra
# headers; a "cid" header overrides the correlation id) and what the client gets.
WHOLE = _reply(data=["genuine"])
PARTS = _thirds(WHOLE)
SCENARIOS = {
    "not JSON": ([(b"not json", {})], 502, INVALID_REPLY),
    "status 700 on the pass-through path": (
        [(b'{"version":1,"status":700,"success":true,"message":"x"}', {})], 502, INVALID_REPLY),
    "missing chunk": ([_chunk(PARTS[0], 0, 3), _chunk(PARTS[2], 2, 3)], 502, INVALID_REPLY),
    "repeated chunk": ([_chunk(PARTS[0], 0, 3), _chunk(PARTS[1], 1, 3), _chunk(PARTS[1], 1, 3)],
                       502, INVALID_REPLY),
    "count changed": ([_chunk(PARTS[0], 0, 3), _chunk(PARTS[1], 1, 2)], 502, INVALID_REPLY),
    "chunk-index without chunk-count": ([(WHOLE, {"chunk-index": "0"})], 502, INVALID_REPLY),
    "re-sent after a crash mid-reply": (
        [_chunk(PARTS[0], 0, 3), _chunk(PARTS[1], 1, 3),
         _chunk(PARTS[0], 0, 3), _chunk(PARTS[1], 1, 3), _chunk(PARTS[2], 2, 3)],
        200, MSG_FETCHED),
    "guessed correlation id, then the genuine reply": (
        [(_reply(data=["forged"]), {"cid": "guess"}), (WHOLE, {})], 200, MSG_FETCHED),
}
# A missing last chunk leaves the request waiting for its deadline (504):
# test_gw_replies.c, since here the workers' own answer would complete it.


def test_hand_made_replies(stack, procs, tokens, kafka, taps):
    """Every scenario at once, each on its own waiting list request. The
    workers are stopped only until the hand-made messages are on the
    partition: the gateway reads those first, the workers' own answers
    (an empty list) come after them and find nobody waiting."""
    gateway = procs.gateway(gateway_id=GATEWAY_ID, request_timeout_ms=15000)
    api1 = Api(gateway.base)
    names = list(SCENARIOS)
    users = {name: tokens.customer() for name in names}
    queries = taps(QUERIES)
    workers = _stop_workers()
    try:
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(api1.get_tickets, users[name], timeout=20) for name in names}
            seen = queries.wait_for(lambda m: m.json()["actor"]["team"] in
                                    {u.team for u in users.values()},
                                    count=len(names), timeout=10, what="the waiting list queries")
            cid_of_team = {m.json()["actor"]["team"]: m.headers["correlation-id"] for m in seen}
            items = []
            for name in names:
                cid = cid_of_team[users[name].team]
                assert len(cid) == 32 and all(c in "0123456789abcdef" for c in cid), cid
                for payload, extra in SCENARIOS[name][0]:
                    headers = dict(extra)
                    target = _other_id(cid) if headers.pop("cid", None) == "guess" else cid
                    items.append((REPLIES, payload, target,
                                  [("correlation-id", target)] + list(headers.items()), GATEWAY_ID))
            kafka.produce_many(items)
            _resume(workers)
            results = {name: futures[name].result() for name in names}
    finally:
        _resume(workers)
    for name in names:
        _messages, status, message = SCENARIOS[name]
        resp = results[name]
        if status == 200:
            data = expect_ok(resp, 200, message)
            assert data == ["genuine"], "%s: answered with %r" % (name, data)
        else:
            try:
                expect_error(resp, status, message)
            except AssertionError as exc:
                raise AssertionError("%s: %s" % (name, exc))
    fams, _ = prom.scrape(gateway.url + "/metrics")
    answered_502 = prom.value(fams, "ticket_gateway_http_requests_total", default=0,
                              route="get-tickets", status="502")
    assert answered_502 == sum(1 for s in SCENARIOS.values() if s[1] == 502), answered_502


# --- UTF-8: error messages cut between characters -----------------------------

def test_70_byte_multibyte_field_name_is_400_over_http(api, customer):
    """Before: the message cut inside a character could not be built into
    JSON, and the answer was 503."""
    body = dict(SEED_CREATE_REQUEST)
    body[KEY_70] = 1
    expect_error(api.create_ticket(customer, body), 400, "Unknown field '%s'" % KEY_CUT)
    expect_error(api.create_reply(customer, new_id(), {"description": "d", KEY_70: 1}), 400,
                 "Unknown field '%s'" % KEY_CUT)


def test_70_byte_multibyte_idempotency_key_is_400(stack, customer):
    """The same key as an Idempotency-Key (not ASCII, so refused) is a 400 too."""
    resp = raw_post(stack.gateway.port, "/api/ticket/create-ticket", customer.token,
                    json.dumps(SEED_CREATE_REQUEST),
                    b"Idempotency-Key: " + KEY_70.encode("utf-8") + b"\r\n")
    assert resp.status == 400, resp
    assert resp.json() == {"success": False, "message": "Header 'Idempotency-Key' must be 1 to 255 "
                                                        "printable ASCII characters"}, resp


@pytest.mark.parametrize("case", ["field name", "message type", "idempotency key"])
def test_70_byte_multibyte_name_over_kafka_is_answered_and_dead_lettered(kafka, taps, case):
    """Before: the worker could build neither the reply nor the dead letter,
    and dropped the message with its offset stored."""
    dlq = taps(DLQ)
    ticket_id = new_id()
    command = create_command(ticket_id, "team-utf8")
    if case == "field name":
        command["ticket"][KEY_70] = 1
        reason = "Unknown field 'ticket.%s'" % KEY_CUT
    elif case == "message type":
        command["type"] = KEY_70
        reason = "Unknown message type '%s'" % KEY_CUT
    else:
        command["idempotencyKey"] = KEY_70
        reason = "Field 'idempotencyKey' must be 1 to 255 printable ASCII characters"
    ((reply, _parts, cid),) = kafka.request_many([(COMMANDS, command, ticket_id, None)])
    assert reply == {"version": 1, "status": 400, "success": False, "message": reason}, reply
    (dead,) = dlq.wait_for(lambda m: m.headers.get("correlation-id") == cid, timeout=20,
                           what="the dead letter")
    assert dead.json()["reason"] == reason
    assert json.loads(dead.json()["payload"]) == command


# --- headers, connections, memory -------------------------------------------------

def test_malformed_header_message(stack, customer):
    """A header name that is not an RFC 9110 token."""
    resp = raw_post(stack.gateway.port, "/api/ticket/create-ticket", customer.token,
                    json.dumps(SEED_CREATE_REQUEST), b"Bad(Name): 1\r\n")
    assert resp.status == 400, resp
    assert resp.json() == {"success": False, "message": "Request has a malformed header"}, resp


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _is_served(sock):
    """Sends /healthz on an open connection: True when answered 200."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_connections_per_address_are_limited(procs):
    """With a limit of 3, at most 3 connections from 127.0.0.1 are served
    (fewer when the readiness probe's connection is still open); the next
    one is closed at once, and a slot frees up when one is closed."""
    gateway = procs.gateway(gateway_id=GATEWAY_ID, env={"MAX_CONNECTIONS_PER_IP": 3})
    held = []
    try:
        for _ in range(10):
            sock = _connect(gateway.port)
            if not _is_served(sock):
                sock.close()
                break
            held.append(sock)
        assert 1 <= len(held) <= 3, "%d connections from one address were served" % len(held)
        held.pop().close()

        def served_again():
            sock = _connect(gateway.port)
            try:
                return _is_served(sock)
            finally:
                sock.close()
        wait_until(served_again, 10, "a connection served once another closed")
    finally:
        for sock in held:
            sock.close()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def test_waiting_requests_keep_no_body(stack, procs, tokens, tickets_coll):
    """16 requests of 1 MiB (valid JSON padded with white space) wait one
    after another: the gateway must not grow by their bodies (it held them
    all before: 16 MiB)."""
    count = 16
    env = {"MAX_BODY_KIB": 1024, "LOG_LEVEL": "info"}
    if os.environ.get("TICKET_TEST_SANITIZED") == "1":
        # ASan keeps freed memory in quarantine (256 MB): freed bodies would
        # still count as resident. Without it they are reused as with malloc.
        env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0").lstrip(":")
    gateway = procs.gateway(gateway_id=GATEWAY_ID, request_timeout_ms=15000, env=env)
    api1 = Api(gateway.base)
    user = tokens.customer()
    body = json.dumps(SEED_CREATE_REQUEST).encode()
    padded = body[:-1] + b" " * (1024 * 1024 - len(body) - 8) + b"}"
    expect_ok(api1.request("POST", "/create-ticket", user.token, data=padded,
                           headers={"Content-Type": "application/json"}), 201, MSG_CREATED)

    def waiting():
        fams, _ = prom.scrape(gateway.url + "/metrics")
        return prom.value(fams, "ticket_gateway_requests_waiting")

    before = _rss_kib(gateway.pid)
    workers = _stop_workers()
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = []
            for i in range(count):
                futures.append(pool.submit(api1.request, "POST", "/create-ticket", user.token,
                                           data=padded, timeout=30,
                                           headers={"Content-Type": "application/json"}))
                wait_until(lambda: waiting() == i + 1, 5, "request %d waiting" % (i + 1),
                           interval=0.01)
            grown = _rss_kib(gateway.pid) - before
            _resume(workers)
            results = [f.result() for f in futures]
    finally:
        _resume(workers)
    print("gateway RSS grew by %d KiB with %d waiting 1 MiB requests" % (grown, count))
    assert grown < 8 * 1024, "RSS grew by %d KiB with %d waiting 1 MiB requests" % (grown, count)
    for resp in results:
        expect_ok(resp, 201, MSG_CREATED)
    wait_until(lambda: tickets_coll.count_documents({"teamId": user.team}) == count + 1, 30,
               "all tickets stored")


# --- a 503 may be for a command that was written --------------------------------------

def test_retry_after_an_unknown_outcome_makes_one_ticket(api, kafka, customer, tickets_coll):
    """A 503 after a delivery timeout can come although the broker took the
    command (the acknowledgement was lost: test_gw_publish_mock.c shows the
    gateway side). Here that first attempt is the command as the gateway
    would have written it; the client's retry with the same Idempotency-Key
    must answer with that ticket and leave one."""
    key = "unknown-" + uuid.uuid4().hex
    first_id = new_id()
    command = create_command(first_id, customer.team, actor_id=customer.sub, priority="low", **{
        k: SEED_CREATE_REQUEST[k] for k in ("category", "subject", "description")})
    command["idempotencyKey"] = key
    kafka.produce(COMMANDS, command, key=first_id)  # no reply address: the client got its 503
    wait_until(lambda: tickets_coll.count_documents({"teamId": customer.team}) == 1, 20,
               "the first attempt applied")
    retried = expect_ok(api.create_ticket(customer, headers={"Idempotency-Key": key}), 201,
                        MSG_CREATED)
    assert retried["_id"] == first_id, "the retry made %s, the first attempt %s" % (
        retried["_id"], first_id)
    docs = list(tickets_coll.find({"teamId": customer.team}))
    assert [str(d["_id"]) for d in docs] == [first_id], docs
