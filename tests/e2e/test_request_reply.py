"""Item 5: request/reply over Kafka — deadlines, late replies, concurrency,
two gateways side by side."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

from helpers.api import (MSG_CREATED, MSG_FETCHED, MSG_REPLIED, SEED_CREATE_REQUEST, Api,
                         assert_newest_first, assert_ticket_shape, describe, expect_error,
                         expect_ok)
from helpers.kafka import REPLIES
from helpers.procs import live_processes
from helpers.wait import wait_until

NO_WORKER = "No worker answered in time"


def test_no_worker_answer_gives_504_and_late_reply_is_counted(stack, procs, api, tokens):
    gateway = procs.gateway(gateway_id=2, request_timeout_ms=1000)
    short = Api(gateway.base)
    user = tokens.customer()
    workers = live_processes("worker")
    assert len(workers) >= 2, workers
    mark = gateway.log_size()
    subject = "answered too late"
    timings = []
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        created = short.create_ticket(user, dict(SEED_CREATE_REQUEST, subject=subject))
        timings.append(time.monotonic() - started)
        started = time.monotonic()
        listed = short.get_tickets(user)
        timings.append(time.monotonic() - started)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    expect_error(created, 504, NO_WORKER)
    expect_error(listed, 504, NO_WORKER)
    # Both answers came while every worker was stopped (SIGCONT only after
    # them): the gateway's own deadline answered. Not before the deadline;
    # the upper bound only catches a deadline ignored (five times it, so a
    # slow machine does not fail it).
    for elapsed in timings:
        assert 0.9 <= elapsed < 5.0, "504 after %.2f s with REQUEST_TIMEOUT_MS=1000" % elapsed
    assert created.headers.get("X-Correlation-Id"), created.headers
    # the workers answer the command once they run again: the gateway drops
    # and counts it; the list query is past its deadline and skipped unread
    gateway.wait_for_msg("late reply", since=mark, timeout=30, count=1)
    # the accepted command was not lost: the ticket exists
    found = wait_until(lambda: [t for t in api.list_tickets(user) if t["subject"] == subject],
                       30, "the ticket of the timed-out create")
    assert len(found) == 1
    assert gateway.alive, gateway.describe()
    expect_ok(short.get_tickets(user), 200, MSG_FETCHED)


def test_many_concurrent_creates_each_get_own_ticket(api, tokens):
    count = 200
    # ten customers of one team (the gateway rate-limits per user)
    users = [tokens.customer()]
    users += [tokens.customer(team=users[0].team) for _ in range(9)]
    customer = users[0]

    def create(i):
        body = dict(SEED_CREATE_REQUEST, subject="concurrent %d" % i,
                    description="description of request %d" % i)
        return i, api.create_ticket(users[i % len(users)], body, timeout=60)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(create, range(count)))
    elapsed = time.monotonic() - started
    ids = set()
    correlation_ids = set()
    for i, resp in results:
        data = expect_ok(resp, 201, MSG_CREATED)
        assert data["subject"] == "concurrent %d" % i, describe(resp)
        assert data["description"] == "description of request %d" % i, describe(resp)
        assert data["creatorId"] == users[i % len(users)].sub
        ids.add(data["_id"])
        correlation_ids.add(resp.headers.get("X-Correlation-Id"))
    assert len(ids) == count, "ids are not unique"
    assert len(correlation_ids) == count and None not in correlation_ids
    listed = api.list_tickets(customer)
    assert len(listed) == count and {t["_id"] for t in listed} == ids
    assert_newest_first(listed)
    print("%d concurrent creates in %.2f s" % (count, elapsed))


def test_concurrent_replies_to_one_ticket_are_all_kept(api, customer, admin):
    ticket = api.new_ticket(customer)
    count = 30

    def reply(i):
        body = {"description": "reply %d" % i}
        if i % 2:
            return i, api.admin_create_reply(admin, ticket["_id"], body, timeout=60)
        return i, api.create_reply(customer, ticket["_id"], body, timeout=60)

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(reply, range(count)))
    versions = []
    for i, resp in results:
        data = expect_ok(resp, 200, MSG_REPLIED)
        assert_ticket_shape(data)
        versions.append(data["__v"])
        assert "reply %d" % i in [e["description"] for e in data["response"]], describe(resp)
    # each answer shows the ticket right after its own reply
    assert sorted(versions) == list(range(1, count + 1)), sorted(versions)
    final = api.list_tickets(customer)
    assert len(final) == 1
    assert final[0]["__v"] == count
    assert sorted(e["description"] for e in final[0]["response"]) == \
        sorted("reply %d" % i for i in range(count))
    assert len({e["_id"] for e in final[0]["response"]}) == count
    times = [e["createdAt"] for e in final[0]["response"]]
    assert times == sorted(times), "replies are not in the order they were added"


def test_mixed_concurrent_reads_and_writes_across_teams(api, tokens, admin):
    users = [tokens.customer() for _ in range(5)]

    def work(i):
        user = users[i % len(users)]
        if i % 3 == 2:
            return ("list", user, api.get_tickets(user, timeout=60))
        return ("create", user, api.create_ticket(
            user, dict(SEED_CREATE_REQUEST, subject="%s #%d" % (user.team, i)), timeout=60))

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(work, range(120)))
    created = {u.team: set() for u in users}
    for kind, user, resp in results:
        if kind == "create":
            data = expect_ok(resp, 201, MSG_CREATED)
            assert data["subject"].startswith(user.team + " #")
            created[user.team].add(data["_id"])
        else:
            data = expect_ok(resp, 200, MSG_FETCHED)
            for ticket in data:  # never another team's ticket
                assert ticket["subject"].startswith(user.team + " #"), ticket
    for user in users:
        assert {t["_id"] for t in api.list_tickets(user)} == created[user.team]


def test_two_gateways_side_by_side_serve_all_routes(stack, procs, api, tokens, admin, taps):
    gw1 = procs.gateway(gateway_id=1)
    api1 = Api(gw1.base)
    replies = taps(REPLIES, [0, 1])
    marks = (stack.gateway.log_size(), gw1.log_size())
    user = tokens.customer()
    responses = []  # (gateway index, response)

    t0 = api.create_ticket(user)
    t1 = api1.create_ticket(user)
    responses += [(0, t0), (1, t1)]
    t0, t1 = expect_ok(t0, 201, MSG_CREATED), expect_ok(t1, 201, MSG_CREATED)
    r = api1.create_reply(user, t0["_id"])
    responses.append((1, r))
    after_reply = expect_ok(r, 200, MSG_REPLIED)
    r = api.create_reply(user, t1["_id"])
    responses.append((0, r))
    expect_ok(r, 200, MSG_REPLIED)
    r = api1.admin_create_reply(admin, t1["_id"])
    responses.append((1, r))
    t1_final = expect_ok(r, 200, MSG_REPLIED)
    assert t1_final["__v"] == 2
    r0, r1 = api.get_tickets(user), api1.get_tickets(user)
    responses += [(0, r0), (1, r1)]
    l0, l1 = expect_ok(r0, 200, MSG_FETCHED), expect_ok(r1, 200, MSG_FETCHED)
    assert l0 == l1 == [t1_final, after_reply]
    r0, r1 = api.admin_get_tickets(admin), api1.admin_get_tickets(admin)
    responses += [(0, r0), (1, r1)]
    for data in (expect_ok(r0, 200, MSG_FETCHED), expect_ok(r1, 200, MSG_FETCHED)):
        ids = [t["_id"] for t in data]
        assert t0["_id"] in ids and t1["_id"] in ids

    # both at once, interleaved
    def work(i):
        target = api1 if i % 2 else api
        return i % 2, target.create_ticket(user, dict(SEED_CREATE_REQUEST, subject="gw %d" % i))

    with ThreadPoolExecutor(max_workers=20) as pool:
        for index, resp in pool.map(work, range(40)):
            responses.append((index, resp))
            expect_ok(resp, 201, MSG_CREATED)
    assert len(api1.list_tickets(user)) == 42

    # each gateway got its answers on its own partition of ticket.replies
    cids_of = {0: set(), 1: set()}
    for index, resp in responses:
        cid = resp.headers.get("X-Correlation-Id")
        assert cid, describe(resp)
        msgs = replies.wait_for(lambda m: m.headers.get("correlation-id") == cid, timeout=10,
                                what="the reply for %s" % cid)
        assert {m.partition for m in msgs} == {index}, \
            "reply for gateway %d came on partition %r" % (index, {m.partition for m in msgs})
        cids_of[index].add(cid)
    # neither gateway read the other's partition (it would see those replies
    # as unknown, i.e. late, correlation ids)
    for gateway, mark, others in ((stack.gateway, marks[0], cids_of[1]),
                                  (gw1, marks[1], cids_of[0])):
        foreign = [r for r in gateway.log_records(mark)
                   if r.get("msg") == "late reply" and r.get("correlationId") in others]
        assert foreign == [], "%s saw replies meant for the other gateway: %r" % (gateway, foreign[:3])
