"""Issue 5 items 1-5: health and readiness, Prometheus metrics on both
binaries, JSON logs (access log, LOG_LEVEL, ACCESS_LOG), W3C tracing from the
HTTP request through Kafka into the worker's log, and the served OpenAPI."""

import json
import re
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
import requests
from bson import ObjectId

from helpers import metrics as prom
from helpers.api import (MSG_CREATED, MSG_FETCHED, MSG_REPLIED, SEED_CREATE_REQUEST, Api,
                         describe, expect_error, expect_ok)
from helpers.kafka import (COMMANDS, EVENTS, QUERIES, REPLIES, create_command, list_query, new_id,
                           probe_all_partitions)
from helpers.ops import (TRACEPARENT_RE, held_partitions, new_traceparent, repo_root, trace_id_of,
                         unique_group, wait_http, worker_with_http)
from helpers.procs import free_port, live_processes
from helpers.wait import assert_stays, wait_until

ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LEVELS = ("debug", "info", "warn", "error")

GATEWAY_FAMILIES = {
    "ticket_gateway_http_requests_total": "counter",
    "ticket_gateway_http_request_duration_seconds": "histogram",
    "ticket_gateway_requests_waiting": "gauge",
    "ticket_gateway_requests_in_flight": "gauge",
    "ticket_gateway_late_replies_total": "counter",
    "ticket_gateway_request_timeouts_total": "counter",
    "ticket_gateway_produce_errors_total": "counter",
    "ticket_gateway_rate_limited_total": "counter",
}
WORKER_FAMILIES = {
    "ticket_worker_messages_total": "counter",
    "ticket_worker_message_duration_seconds": "histogram",
    "ticket_worker_db_operation_duration_seconds": "histogram",
    "ticket_worker_db_errors_total": "counter",
    "ticket_worker_dlq_total": "counter",
    "ticket_worker_consumer_lag": "gauge",
}
# Families with labels appear with their first series; the others are
# exported from the start (at 0, or the lag gauge's HELP/TYPE).
WORKER_LABELLED_FAMILIES = {"ticket_worker_messages_total",
                            "ticket_worker_message_duration_seconds",
                            "ticket_worker_db_operation_duration_seconds",
                            "ticket_worker_db_errors_total"}
REQUESTS_TOTAL = "ticket_gateway_http_requests_total"
DURATION = "ticket_gateway_http_request_duration_seconds"


def _check_types(families, expected):
    for name, kind in expected.items():
        if name in families:
            assert families[name].type == kind, "%s is a %s, want %s" % (
                name, families[name].type, kind)


# --- gateway metrics -------------------------------------------------------------

def test_gateway_request_counters_count_exactly_per_route_and_status(stack, procs, tokens):
    """Each request is counted once under its route and status, and once in the
    latency histogram of its route; the exposition follows the conventions."""
    gateway = procs.gateway(gateway_id=1)
    api = Api(gateway.base)
    before, text = prom.scrape(gateway.url + "/metrics")
    prom.check_conventions(before)
    _check_types(before, GATEWAY_FAMILIES)

    customer, customer2, admin = tokens.customer(), tokens.customer(), tokens.admin()
    sent = Counter()

    def expect(route, status, resp):
        assert resp.status_code == status, describe(resp)
        sent[(route, str(status))] += 1
        return resp

    tickets = []
    for i in range(3):
        resp = expect("create-ticket", 201, api.create_ticket(customer, dict(
            SEED_CREATE_REQUEST, subject="metrics %d" % i)))
        tickets.append(resp.json()["data"])
    expect("create-ticket", 400, api.create_ticket(customer, {"category": "a"}))
    expect("create-ticket", 400, api.create_ticket(customer, dict(SEED_CREATE_REQUEST, x=1)))
    expect("create-ticket", 415, api.request("POST", "/create-ticket", customer.token,
                                             data=b"{}", headers={"Content-Type": "text/plain"}))
    expect("get-tickets", 200, api.get_tickets(customer))
    expect("get-tickets", 200, api.get_tickets(customer))
    expect("get-tickets", 401, api.request("GET", "/get-tickets"))
    expect("admin-get-tickets", 200, api.admin_get_tickets(admin))
    expect("admin-get-tickets", 403, api.admin_get_tickets(customer2))
    expect("create-reply", 200, api.create_reply(customer, tickets[0]["_id"]))
    expect("create-reply", 400, api.create_reply(customer, "not-an-id"))
    expect("admin-create-reply", 200, api.admin_create_reply(admin, tickets[1]["_id"]))
    expect("admin-create-reply", 404, api.admin_create_reply(admin, str(ObjectId())))
    for path in ("/healthz", "/readyz", "/api/ticket/openapi.json"):
        route = {"/healthz": "healthz", "/readyz": "readyz"}.get(path, "openapi")
        expect(route, 200, requests.get(gateway.url + path, timeout=10))
    # unknown path and wrong method: no route matched
    expect("unmatched", 404, requests.get(gateway.url + "/api/ticket/nope", timeout=10))
    expect("unmatched", 404, requests.get(gateway.url + "/nope", timeout=10))
    wrong_method = requests.delete(gateway.base + "/get-tickets", timeout=10)
    assert wrong_method.status_code == 405, describe(wrong_method)

    def deltas():
        after, _text = prom.scrape(gateway.url + "/metrics")
        old = prom.counter_by(before, REQUESTS_TOTAL, ("route", "status"))
        new = prom.counter_by(after, REQUESTS_TOTAL, ("route", "status"))
        diff = {k: v - old.get(k, 0) for k, v in new.items()
                if k[0] != "metrics" and v - old.get(k, 0) != 0}
        return after, diff

    expected_total = sum(sent.values()) + 1  # + the 405

    def settled():
        after, diff = deltas()
        return (after, diff) if sum(diff.values()) >= expected_total else None

    after, diff = wait_until(settled, 10, "every request counted")
    statuses_405 = {k: v for k, v in diff.items() if k[1] == "405"}
    assert sum(statuses_405.values()) == 1, "the 405 was counted %r" % statuses_405
    assert {k: v for k, v in diff.items() if k[1] != "405"} == dict(sent), \
        "requests_total deltas %r, sent %r" % (diff, dict(sent))

    prom.check_conventions(after)
    _check_types(after, GATEWAY_FAMILIES)
    per_route = Counter()
    for (route, _status), n in diff.items():
        per_route[route] += n
    for route, n in per_route.items():
        got = (prom.histogram_count(after, DURATION, route=route) -
               prom.histogram_count(before, DURATION, route=route))
        assert got == n, "%s_count{route=%s} grew by %r, want %d" % (DURATION, route, got, n)
    # nothing waits now, and the scrape itself is in flight
    assert prom.value(after, "ticket_gateway_requests_waiting") == 0
    assert prom.value(after, "ticket_gateway_requests_in_flight") >= 1
    assert prom.value(after, "ticket_gateway_request_timeouts_total") == 0
    assert prom.value(after, "ticket_gateway_late_replies_total") == 0


def test_gateway_exposes_every_documented_family_from_start(procs):
    """Counters whose series are known in advance (no label, or a fixed label
    set like stage=enqueue|delivery) are exported at 0 before their first
    event, so alerts and rate() work from the start (Prometheus practice
    "avoid missing metrics")."""
    gateway = procs.gateway(gateway_id=1)
    families, text = prom.scrape(gateway.url + "/metrics")
    prom.check_conventions(families)
    missing = sorted(set(GATEWAY_FAMILIES) - set(families))
    assert not missing, "families absent from a fresh gateway's /metrics: %s\n%s" % (
        missing, text)
    assert prom.value(families, "ticket_gateway_rate_limited_total") == 0
    stages = {labels.get("stage") for labels, _ in
              prom.series(families, "ticket_gateway_produce_errors_total")}
    assert {"enqueue", "delivery"} <= stages, stages


# --- worker metrics and readiness ----------------------------------------------

def test_worker_health_metrics_and_lag_per_assigned_partition(stack, procs, kafka):
    """A third worker with WORKER_HTTP_PORT joins the group: it is ready, has a
    lag series for exactly the partitions it holds, and counts each message it
    handles once by topic/type/status, in its duration and DB histograms."""
    worker, url = worker_with_http(procs)
    try:
        assert requests.get(url + "/healthz", timeout=5).status_code == 200
        # the rebalance settles: every partition answers, and this worker holds some
        wait_until(lambda: held_partitions(worker), 30, "the new worker holds partitions")
        probe_all_partitions(kafka, timeout=60)
        held = held_partitions(worker)
        assert held, "the third worker holds no partition: %s" % worker.describe()
        wait_http(url + "/readyz", 200, timeout=10)

        def lag_matches():
            families, _ = prom.scrape(url + "/metrics")
            lag = {(labels["topic"], int(labels["partition"])): v
                   for labels, v in prom.series(families, "ticket_worker_consumer_lag")}
            return families if set(lag) == held else None

        wait_until(lag_matches, 15, "a consumer_lag series for each held partition %r"
                   % sorted(held))
        time.sleep(0.5)  # the probe's last counts land after its replies
        before, _ = prom.scrape(url + "/metrics")
        prom.check_conventions(before)
        _check_types(before, WORKER_FAMILIES)

        cmd_parts = sorted(p for t, p in held if t == COMMANDS)
        query_parts = sorted(p for t, p in held if t == QUERIES)
        team = "team-metrics-" + new_id()
        requests_ = []
        for p in cmd_parts:
            for _ in range(2):
                tid = new_id()
                requests_.append((COMMANDS, create_command(tid, team), tid, p))
        for p in query_parts:
            for _ in range(2):
                requests_.append((QUERIES, list_query(team), team, p))
        for (_topic, _v, _k, _p), (obj, _parts, _cid) in zip(requests_, kafka.request_many(requests_)):
            assert obj["success"] is True, obj
        poison_parts = cmd_parts or query_parts
        poison_topic = COMMANDS if cmd_parts else QUERIES
        kafka.produce(poison_topic, b"this is not JSON", key=b"poison",
                      partition=poison_parts[0])

        n_create, n_list = 2 * len(cmd_parts), 2 * len(query_parts)

        def counted():
            fams, _ = prom.scrape(url + "/metrics")
            return fams if prom.value(fams, "ticket_worker_dlq_total", default=0) >= 1 and \
                sum(v for _l, v in prom.series(fams, "ticket_worker_messages_total")) - \
                sum(v for _l, v in prom.series(before, "ticket_worker_messages_total")) \
                >= n_create + n_list else None

        after = wait_until(counted, 15, "the worker counted what it handled")
        prom.check_conventions(after)
        _check_types(after, WORKER_FAMILIES)
        # after creates, lists and a dead letter, only the error family may be absent
        absent = set(WORKER_FAMILIES) - set(after) - {"ticket_worker_db_errors_total"}
        assert not absent, "worker metric families missing after traffic: %s" % sorted(absent)
        old = prom.counter_by(before, "ticket_worker_messages_total", ("topic", "type", "status"))
        new = prom.counter_by(after, "ticket_worker_messages_total", ("topic", "type", "status"))
        diff = {k: v - old.get(k, 0) for k, v in new.items() if v != old.get(k, 0)}
        want = {}
        if n_create:
            want[(COMMANDS, "ticket.create", "201")] = n_create
        if n_list:
            want[(QUERIES, "tickets.list", "200")] = n_list
        assert diff == want, "messages_total deltas %r, want %r" % (diff, want)
        for kind, n in (("ticket.create", n_create), ("tickets.list", n_list)):
            got = (prom.histogram_count(after, "ticket_worker_message_duration_seconds", type=kind) -
                   prom.histogram_count(before, "ticket_worker_message_duration_seconds", type=kind))
            assert got == n, "message_duration_seconds{type=%s} grew by %r, want %d" % (kind, got, n)
            got = (prom.histogram_count(after, "ticket_worker_db_operation_duration_seconds",
                                        operation=kind) -
                   prom.histogram_count(before, "ticket_worker_db_operation_duration_seconds",
                                        operation=kind))
            assert got == n, "db_operation_duration_seconds{operation=%s} grew by %r, want %d" % (
                kind, got, n)
        dlq_before = prom.value(before, "ticket_worker_dlq_total", default=0)
        assert prom.value(after, "ticket_worker_dlq_total") - dlq_before == 1

        def lag_zero():
            fams, _ = prom.scrape(url + "/metrics")
            lag = {(l["topic"], int(l["partition"])): v
                   for l, v in prom.series(fams, "ticket_worker_consumer_lag")}
            return lag if set(lag) == held and all(v == 0 for v in lag.values()) else None

        wait_until(lag_zero, 15, "consumer lag back to 0 on every held partition")
    finally:
        worker.stop()
        stack.heal()


def _worker_without_database(procs):
    dead_db = "mongodb://127.0.0.1:%d/ticketing_test?serverSelectionTimeoutMS=500" % free_port()
    worker, url = worker_with_http(procs, env={"MONGODB_URI": dead_db,
                                               "KAFKA_GROUP_ID": unique_group()}, wait=False)
    wait_http(url + "/healthz", 200, timeout=15)
    return worker, url


def test_worker_not_ready_while_database_unreachable(procs):
    """Alive but not ready while MongoDB does not answer; /metrics still
    served; leaves cleanly on SIGTERM."""
    worker, url = _worker_without_database(procs)
    for _ in range(10):
        resp = requests.get(url + "/readyz", timeout=5)
        assert resp.status_code == 503, "worker without a database: /readyz %s" % resp.status_code
        time.sleep(0.1)
    assert requests.get(url + "/nope", timeout=5).status_code == 404
    assert requests.post(url + "/healthz", timeout=5).status_code == 405
    families, text = prom.scrape(url + "/metrics")
    prom.check_conventions(families)
    assert "ticket_worker_consumer_lag" in families, text
    wait_until(lambda: worker.count_msg("database not ready, retrying") >= 1, 10,
               "the worker logs that it waits for the database")
    assert worker.stop(grace=15) == 0, worker.describe()


def test_worker_exports_unlabelled_counters_from_start(procs):
    """ticket_worker_dlq_total has no labels: it is exported at 0 before the
    first dead letter (labelled families appear with their first series)."""
    worker, url = _worker_without_database(procs)
    families, text = prom.scrape(url + "/metrics")
    absent = set(WORKER_FAMILIES) - set(families)
    assert absent <= WORKER_LABELLED_FAMILIES, \
        "a worker that handled nothing does not export %s (only labelled families may wait " \
        "for their first series):\n%s" % (sorted(absent - WORKER_LABELLED_FAMILIES), text)
    assert prom.value(families, "ticket_worker_dlq_total") == 0, \
        "ticket_worker_dlq_total is not exported before the first dead letter:\n" + text


# --- gateway health, readiness ---------------------------------------------------

def test_gateway_health_and_readiness_need_no_token(stack):
    for path in ("/healthz", "/readyz"):
        resp = requests.get(stack.gateway.url + path, timeout=5)
        assert resp.status_code == 200, describe(resp)
        resp = requests.get(stack.gateway.url + path, timeout=5,
                            headers={"Authorization": "Bearer garbage"})
        assert resp.status_code == 200, describe(resp)
    assert requests.get(stack.gateway.url + "/metrics", timeout=5).status_code == 200
    # health lives outside /api/ticket only
    for path in ("/api/ticket/healthz", "/api/ticket/readyz", "/api/ticket/metrics"):
        expect_error(requests.get(stack.gateway.url + path, timeout=5), 404, "Route not found")
    # it turned ready only after its reply partition was assigned
    msgs = [r["msg"] for r in stack.gateway.log_records()]
    assert "reply partition assigned" in msgs and "ready" in msgs, msgs[:20]
    assert msgs.index("reply partition assigned") < msgs.index("ready"), msgs[:20]


def test_gateway_not_ready_without_its_reply_partition(procs, tokens):
    """GATEWAY_ID names a partition of ticket.replies that does not exist: the
    gateway is alive but never ready, and refuses API requests with 503
    rather than publishing requests whose replies it could never read."""
    gateway = procs.gateway(gateway_id=9, wait=False)
    wait_http(gateway.url + "/healthz", 200, timeout=15)
    assert_stays(lambda: (lambda s: s != 503 and s)(
                     requests.get(gateway.url + "/readyz", timeout=5).status_code),
                 2, "/readyz of a gateway without its reply partition is not 503")
    expect_error(Api(gateway.base).get_tickets(tokens.customer()), 503,
                 "Service unavailable, try again later")
    assert gateway.count_msg("ready") == 0, gateway.describe()
    assert gateway.count_msg("reply partition not reachable yet") >= 1, gateway.describe()
    assert gateway.stop(grace=15) == 0, gateway.describe()


# --- logs ---------------------------------------------------------------------------

def _check_log_lines(proc, component):
    """Every line of the process's log is one JSON object with the base fields."""
    text = proc.log_text()
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError("log line is not JSON: %r" % line[:300])
        assert isinstance(record, dict), line
        assert ISO_MS_RE.match(record.get("time", "")), "bad time in %r" % line[:300]
        assert record.get("level") in LEVELS, line[:300]
        assert record.get("component") == component, line[:300]
        assert isinstance(record.get("msg"), str) and record["msg"], line[:300]
        records.append(record)
    return records, text


def test_access_log_is_json_with_request_fields_and_no_secrets(stack, procs, tokens, jwt_secret):
    gateway = procs.gateway(gateway_id=1)
    api = Api(gateway.base)
    user = tokens.customer()
    traceparent, trace_id = new_traceparent()
    created = api.create_ticket(user, headers={"traceparent": traceparent})
    expect_ok(created, 201, MSG_CREATED)
    listed = api.get_tickets(user)
    expect_ok(listed, 200, MSG_FETCHED)
    bad_token = tokens.sign({"sub": "x", "role": "customer", "team": "t",
                             "exp": int(time.time()) + 60}, key="z" * 64)
    refused = api.request("GET", "/get-tickets", bad_token)
    expect_error(refused, 401, "Invalid token")
    in_query = requests.get(gateway.base + "/get-tickets", params={"access_token": user.token},
                            timeout=10)
    expect_error(in_query, 401, "Authorization token is missing")
    invalid = api.create_ticket(user, {"category": "x"})
    assert invalid.status_code == 400
    unknown = requests.get(gateway.url + "/api/ticket/nope", timeout=10)
    assert unknown.status_code == 404

    def request_lines():
        records, _ = _check_log_lines(gateway, "gateway")
        lines = [r for r in records if r["msg"] == "request"]
        return lines if len([l for l in lines if l.get("route") != "readyz"]) >= 6 else None

    lines = wait_until(request_lines, 10, "an access log line per request")
    for line in lines:
        assert isinstance(line.get("route"), str), line
        assert type(line.get("status")) is int, line
        assert isinstance(line.get("latencyMs"), (int, float)) and line["latencyMs"] >= 0, line
        if "traceId" in line:
            assert re.match(r"^[0-9a-f]{32}$", line["traceId"]), line

    def line_for(resp):
        cid = resp.headers.get("X-Correlation-Id")
        tid = trace_id_of(resp.headers.get("traceparent"))
        match = [l for l in lines if l.get("traceId") == tid]
        assert len(match) == 1, "access log lines for trace %s: %r" % (tid, match)
        if cid:
            assert match[0].get("correlationId") == cid, match[0]
        else:
            assert "correlationId" not in match[0], match[0]
        return match[0]

    line = line_for(created)
    assert line["route"] == "create-ticket" and line["status"] == 201, line
    assert line["traceId"] == trace_id and line["userId"] == user.sub, line
    line = line_for(listed)
    assert line["route"] == "get-tickets" and line["status"] == 200 and line["userId"] == user.sub
    for resp in (refused, in_query):
        line = line_for(resp)
        assert line["route"] == "get-tickets" and line["status"] == 401, line
        assert "userId" not in line, line
    line = line_for(invalid)
    assert line["status"] == 400 and line["userId"] == user.sub, line
    assert [l for l in lines if l["route"] == "unmatched" and l["status"] == 404], lines

    _records, text = _check_log_lines(gateway, "gateway")
    for secret, what in ((jwt_secret, "JWT_SECRET"), (user.token, "the token"),
                         (user.token.split(".")[2], "the token's signature"),
                         (bad_token, "the refused token"), ("Bearer", "an Authorization header")):
        assert secret not in text, "%s appears in the gateway log %s" % (what, gateway.log_path)


def test_session_gateway_log_never_contains_secret(stack, jwt_secret):
    """The gateway that served the whole suite so far: every line JSON, no secret."""
    _records, text = _check_log_lines(stack.gateway, "gateway")
    assert jwt_secret not in text
    assert "Bearer " not in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.", text), \
        "a JWT appears in the gateway log %s" % stack.gateway.log_path
    for worker in stack.workers:
        _check_log_lines(worker, "worker")


def test_access_log_off(stack, procs, tokens):
    gateway = procs.gateway(gateway_id=1, env={"ACCESS_LOG": "off"})
    api = Api(gateway.base)
    user = tokens.customer()
    expect_ok(api.create_ticket(user), 201, MSG_CREATED)
    expect_ok(api.get_tickets(user), 200, MSG_FETCHED)
    assert_stays(lambda: [r for r in gateway.log_records() if r.get("msg") == "request"], 2,
                 "ACCESS_LOG=off still writes request lines")
    records, _ = _check_log_lines(gateway, "gateway")
    assert [r for r in records if r["msg"] == "ready"], "other info lines stay: %s" % gateway.describe()
    families, _ = prom.scrape(gateway.url + "/metrics")
    assert prom.value(families, REQUESTS_TOTAL, route="create-ticket", status="201") == 1


def test_log_level_warn_drops_info_lines(stack, procs, tokens):
    gateway = procs.gateway(gateway_id=1, env={"LOG_LEVEL": "warn"})
    api = Api(gateway.base)
    expect_ok(api.create_ticket(tokens.customer()), 201, MSG_CREATED)
    assert_stays(lambda: [r for r in gateway.log_records() if r.get("level") in ("debug", "info")],
                 2, "LOG_LEVEL=warn still logs info lines")
    records, _ = _check_log_lines(gateway, "gateway")
    below = [r for r in records if r["level"] in ("debug", "info")]
    assert below == [], "LOG_LEVEL=warn still logs: %r" % below[:3]


@pytest.mark.parametrize("binary", ["gateway", "worker"])
def test_invalid_log_level_refuses_to_start(procs, config, jwt_secret, binary):
    env = {"LOG_LEVEL": "verbose", "KAFKA_BROKERS": config.kafka, "PORT": free_port(),
           "BIND_ADDRESS": "127.0.0.1", "JWT_SECRET": jwt_secret, "GATEWAY_ID": 1,
           "MONGODB_URI": config.mongodb_uri}
    path = config.gateway_bin if binary == "gateway" else config.worker_bin
    rc, output = procs.run_to_exit(path, env)
    assert rc == 2, "exit code %s:\n%s" % (rc, output)
    lines = [json.loads(l) for l in output.splitlines() if l.strip()]
    assert any("LOG_LEVEL" in (l.get("error") or "") for l in lines), output


# --- tracing -------------------------------------------------------------------------

def _worker_line(correlation_id, msg, timeout=10):
    def find():
        for worker in live_processes("worker"):
            for record in worker.log_records():
                if record.get("msg") == msg and record.get("correlationId") == correlation_id:
                    return record
        return None
    return wait_until(find, timeout, "worker log %r for correlation id %s" % (msg, correlation_id))


def _gateway_line(gateway, correlation_id, timeout=10):
    def find():
        for record in gateway.log_records():
            if record.get("msg") == "request" and record.get("correlationId") == correlation_id:
                return record
        return None
    return wait_until(find, timeout, "gateway access log for correlation id %s" % correlation_id)


def test_traceparent_is_carried_to_kafka_and_the_worker_log(stack, api, customer, admin, taps):
    commands, replies, events = taps(COMMANDS), taps(REPLIES, [0]), taps(EVENTS)
    queries = taps(QUERIES)
    traceparent, trace_id = new_traceparent()
    resp = api.create_ticket(customer, headers={"traceparent": traceparent})
    ticket = expect_ok(resp, 201, MSG_CREATED)
    assert resp.headers.get("traceparent") == traceparent, resp.headers
    cid = resp.headers.get("X-Correlation-Id")
    assert cid, resp.headers

    gw_line = _gateway_line(stack.gateway, cid)
    assert gw_line["traceId"] == trace_id and gw_line["userId"] == customer.sub, gw_line
    wk_line = _worker_line(cid, "command applied")
    assert wk_line["traceId"] == trace_id, wk_line
    assert wk_line["ticketId"] == ticket["_id"], wk_line

    cmd = commands.wait_for(lambda m: m.headers.get("correlation-id") == cid)[0]
    assert cmd.headers.get("traceparent") == traceparent, cmd.headers
    reply = replies.wait_for(lambda m: m.headers.get("correlation-id") == cid)[0]
    assert trace_id_of(reply.headers.get("traceparent")) == trace_id, reply.headers
    event = events.wait_for(lambda m: m.json()["type"] == "ticket.created"
                            and m.json()["ticket"]["_id"] == ticket["_id"])[0]
    assert trace_id_of(event.headers.get("traceparent")) == trace_id, event.headers

    # the same trace across a reply and a query
    tp2, trace2 = new_traceparent()
    resp = api.admin_create_reply(admin, ticket["_id"], headers={"traceparent": tp2})
    expect_ok(resp, 200, MSG_REPLIED)
    assert trace_id_of(resp.headers["traceparent"]) == trace2
    wk_line = _worker_line(resp.headers["X-Correlation-Id"], "command applied")
    assert wk_line["traceId"] == trace2, wk_line
    tp3, trace3 = new_traceparent("00")
    resp = api.get_tickets(customer, headers={"traceparent": tp3})
    expect_ok(resp, 200, MSG_FETCHED)
    assert resp.headers["traceparent"] == tp3
    query = queries.wait_for(lambda m: m.headers.get("correlation-id") ==
                             resp.headers["X-Correlation-Id"])[0]
    assert query.headers.get("traceparent") == tp3
    wk_line = _worker_line(resp.headers["X-Correlation-Id"], "query answered")
    assert wk_line["traceId"] == trace3, wk_line


def test_trace_is_generated_when_the_client_sends_none(stack, api, customer):
    seen = set()
    for _ in range(2):
        resp = api.create_ticket(customer)
        expect_ok(resp, 201, MSG_CREATED)
        trace_id = trace_id_of(resp.headers.get("traceparent"))
        assert trace_id not in seen
        seen.add(trace_id)
        cid = resp.headers["X-Correlation-Id"]
        assert _gateway_line(stack.gateway, cid)["traceId"] == trace_id
        assert _worker_line(cid, "command applied")["traceId"] == trace_id
    # errors answered by the gateway itself carry one too
    resp = api.request("GET", "/get-tickets")
    assert resp.status_code == 401
    trace_id_of(resp.headers.get("traceparent"))


BAD_TRACEPARENTS = [
    ("version-ff", "ff-%s-%s-01" % ("a" * 32, "b" * 16)),
    ("uppercase", "00-%s-%s-01" % ("A" * 32, "B" * 16)),
    ("zero-trace-id", "00-%s-%s-01" % ("0" * 32, "b" * 16)),
    ("zero-parent-id", "00-%s-%s-01" % ("a" * 32, "0" * 16)),
    ("short", "00-%s-%s-01" % ("a" * 31, "b" * 16)),
    ("garbage", "hello"),
    ("extra-field", "00-%s-%s-01-zz" % ("a" * 32, "b" * 16)),
]


@pytest.mark.parametrize("case,value", BAD_TRACEPARENTS, ids=[c for c, _ in BAD_TRACEPARENTS])
def test_malformed_traceparent_is_replaced_by_a_new_trace(api, customer, case, value):
    resp = api.get_tickets(customer, headers={"traceparent": value})
    expect_ok(resp, 200, MSG_FETCHED)
    returned = resp.headers.get("traceparent")
    assert TRACEPARENT_RE.match(returned or ""), returned
    trace_id_of(returned)
    assert returned != value and "a" * 32 not in returned, returned


# --- OpenAPI -------------------------------------------------------------------------

def _spec_bytes():
    with open("%s/schemas/openapi.json" % repo_root(), "rb") as f:
        return f.read()


def _documented_operations(spec):
    """{(METHOD, absolute path)} from the spec, honouring path-level servers."""
    top = urlparse(spec["servers"][0]["url"]).path.rstrip("/")
    ops = set()
    for path, item in spec["paths"].items():
        servers = item.get("servers")
        base = urlparse(servers[0]["url"]).path.rstrip("/") if servers else top
        for method in item:
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                ops.add((method.upper(), base + path))
    return ops


def _router_operations():
    """{(METHOD, path)} of the gateway's route table (gateway/gw_router.c)."""
    with open("%s/gateway/gw_router.c" % repo_root(), encoding="utf-8") as f:
        source = f.read()
    base = re.search(r'#define\s+API_BASE\s+"([^"]*)"', source).group(1)
    ops = set()
    for method, prefix, path in re.findall(
            r'\{GW_ROUTE_\w+,\s*"[^"]*",\s*"([A-Z]+)",\s*(API_BASE\s*)?"([^"]*)"', source):
        ops.add((method, (base if prefix else "") + path))
    assert len(ops) >= 5, ops
    return ops


def test_openapi_is_served_byte_for_byte(stack):
    resp = requests.get(stack.gateway.base + "/openapi.json", timeout=10)
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert resp.content == _spec_bytes(), "served OpenAPI differs from schemas/openapi.json"


def test_openapi_documents_exactly_the_routes_the_gateway_serves(stack):
    spec = json.loads(_spec_bytes())
    documented = _documented_operations(spec)
    served = _router_operations()
    assert documented == served, "only in the spec: %r; only in the gateway: %r" % (
        sorted(documented - served), sorted(served - documented))
    paths = {}
    for method, path in documented:
        paths.setdefault(path, set()).add(method)
        resp = requests.request(method, stack.gateway.url + path, timeout=10)
        assert resp.status_code not in (404, 405), \
            "documented %s %s answers %s" % (method, path, describe(resp))
    for path, methods in paths.items():
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - methods:
            resp = requests.request(method, stack.gateway.url + path, timeout=10)
            expect_error(resp, 405, "Method not allowed")
            assert set(resp.headers["Allow"].replace(" ", "").split(",")) == methods, resp.headers


UNDOCUMENTED = ["/api/ticket/foo", "/api/ticket/openapi.yaml", "/api/ticket/healthz",
                "/api/ticket/metrics", "/openapi.json", "/api/healthz", "/api/ticket/create",
                "/api/ticket/tickets", "/api/ticket/admin", "/metrics.json", "/debug"]


@pytest.mark.parametrize("path", UNDOCUMENTED)
def test_undocumented_paths_are_404(stack, customer, path):
    spec_ops = _documented_operations(json.loads(_spec_bytes()))
    assert path not in {p for _m, p in spec_ops}
    for method in ("GET", "POST"):
        resp = requests.request(method, stack.gateway.url + path, timeout=10,
                                headers={"Authorization": "Bearer " + customer.token})
        expect_error(resp, 404, "Route not found")
