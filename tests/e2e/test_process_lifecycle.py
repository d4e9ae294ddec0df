"""Processes: readiness, clean exit on SIGTERM/SIGINT."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from helpers.api import MSG_CREATED, MSG_FETCHED, Api, expect_error, expect_ok
from helpers.kafka import QUERIES
from helpers.procs import free_port, live_processes
from helpers.wait import wait_until


def test_gateway_and_worker_exit_zero_on_sigterm(stack, procs, tokens):
    gateway = procs.gateway(gateway_id=1)
    user = tokens.customer()
    expect_ok(Api(gateway.base).create_ticket(user), 201, MSG_CREATED)
    started = time.monotonic()
    rc = gateway.stop(grace=15)
    assert rc == 0, "gateway exit code %s on SIGTERM after %.1f s: %s" % (
        rc, time.monotonic() - started, gateway.describe())

    worker = stack.workers[1]
    try:
        started = time.monotonic()
        rc = worker.stop(grace=15)
        assert rc == 0, "worker exit code %s on SIGTERM after %.1f s: %s" % (
            rc, time.monotonic() - started, worker.describe())
    finally:
        stack.heal()


def test_gateway_exits_zero_on_sigint(procs):
    gateway = procs.gateway(gateway_id=1)
    rc = gateway.stop(grace=15, sig=signal.SIGINT)
    assert rc == 0, gateway.describe()


def test_gateway_answers_in_flight_requests_before_exiting(stack, procs, tokens, taps):
    """Draining: requests already published when SIGTERM arrives still get a
    complete HTTP answer (their reply, or an error body), never a reset."""
    gateway = procs.gateway(gateway_id=1)
    api1 = Api(gateway.base)
    user = tokens.customer()
    queries = taps(QUERIES)
    workers = live_processes("worker")
    results = []
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(api1.get_tickets, user, timeout=30) for _ in range(5)]
            queries.wait_for(lambda m: m.json()["actor"]["team"] == user.team, count=5,
                             timeout=10, what="the 5 in-flight list queries")
            gateway.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            for worker in workers:
                worker.send_signal(signal.SIGCONT)
            for future in futures:
                try:
                    results.append(future.result())
                except requests.RequestException as exc:
                    raise AssertionError("an in-flight request got no HTTP answer after SIGTERM: "
                                         "%r\n%s" % (exc, gateway.describe()))
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    rc = gateway.wait_exit(15)
    assert rc == 0, gateway.describe()
    for resp in results:
        if resp.status_code == 200:
            assert expect_ok(resp, 200, MSG_FETCHED) == []
        elif resp.status_code == 503:
            expect_error(resp, 503, "Service unavailable, try again later")
        else:
            expect_error(resp, 504, "No worker answered in time")


def test_gateway_without_broker_is_alive_but_not_ready(procs, tokens):
    dead_broker = "127.0.0.1:%d" % free_port()
    gateway = procs.gateway(gateway_id=1, env={"KAFKA_BROKERS": dead_broker}, wait=False)
    wait_until(lambda: _status(gateway.url + "/healthz") == 200, 15, "/healthz 200")
    for _ in range(10):
        assert _status(gateway.url + "/readyz") == 503
        time.sleep(0.1)
    user = tokens.customer()
    resp = Api(gateway.base).get_tickets(user, timeout=30)
    expect_error(resp, 503, "Service unavailable, try again later")
    rc = gateway.stop(grace=15)
    assert rc == 0, gateway.describe()


def _status(url):
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None
