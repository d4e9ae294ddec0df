"""Fault 4: SIGTERM under load.

Gateway: stops accepting new requests, answers those in flight, exits 0;
nothing acknowledged is lost. Worker: finishes its batch, exits 0, the other
worker takes its partitions over; nothing lost or duplicated.
"""

import signal
import time

from helpers.kafka import probe_all_partitions
from helpers.wait import wait_until

from faultlib import (CONN_ERROR, REFUSED, TIMEOUT, Load, Phase, counts, latency_figures, ms,
                      record, settle)

REQUEST_TIMEOUT_S = 5
DRAIN_S = REQUEST_TIMEOUT_S + 1   # the gateway's drain: REQUEST_TIMEOUT_MS + 1 s


def test_gateway_sigterm_under_load(fault_stack, tokens, tickets_coll, kafka):
    stack = fault_stack
    gateway = stack.gateway
    t_start = time.monotonic()
    load = Load(gateway.base, tokens, "gateway-sigterm", clients=20, kafka=kafka).start()
    figures = {}
    try:
        load.sleep_until(5)
        since = gateway.log_size()
        term_at = load.elapsed()
        gateway.send_signal(signal.SIGTERM)
        # The gateway logs "draining" just before it stops taking requests: a
        # request sent after we saw that line must not be accepted (an event,
        # not a guess at how long the signal takes on a busy machine).
        gateway.wait_for_msg("draining", since=since, timeout=DRAIN_S)
        draining_at = load.elapsed()
        rc = gateway.wait_exit(DRAIN_S + 10)
        exit_at = load.elapsed()
        load.sleep_until(exit_at + 2)
    finally:
        load.stop()
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60)
    rec = load.reconcile(tickets_coll)
    load.close()

    t0 = load.t0
    in_flight = [a for a in load.attempts if a.started - t0 < term_at < a.ended - t0]
    after_term = [a for a in load.attempts if a.started - t0 > draining_at]
    after_exit = [a for a in load.attempts if a.started - t0 > exit_at]
    figures.update({
        "exit code": rc, "exit after SIGTERM": "%.2f s" % (exit_at - term_at),
        "draining seen after SIGTERM": "%.2f s" % (draining_at - term_at),
        "in flight at SIGTERM": "%d (%s)" % (len(in_flight), dict(counts(in_flight))),
        "started after SIGTERM": dict(counts(after_term)),
        "settled after load": "%.1f s" % settled})
    record("4a. gateway SIGTERM", rec, time.monotonic() - t_start, **figures)

    assert rc == 0, "gateway exit code %r: %s" % (rc, gateway.describe())
    assert exit_at - term_at < DRAIN_S + 3, "gateway took %.1f s to exit" % (exit_at - term_at)
    no_answer = [a for a in in_flight if not isinstance(a.outcome, int)]
    assert not no_answer, "%d in-flight request(s) got no HTTP answer: %s\n%s" % (
        len(no_answer), [(a.outcome, a.message) for a in no_answer[:3]], gateway.tail(20))
    accepted_late = [a for a in after_term if a.acked]
    assert not accepted_late, "%d request(s) sent after \"draining\" were accepted (2xx)" % len(
        accepted_late)
    assert all(a.outcome in (503, REFUSED, CONN_ERROR) for a in after_term), \
        dict(counts(after_term))
    assert after_exit and all(a.outcome == REFUSED for a in after_exit), dict(counts(after_exit))
    assert not [a for a in load.attempts if a.outcome == TIMEOUT]
    rec.assert_clean(allowed_other=(REFUSED, CONN_ERROR))


def test_worker_sigterm_under_load(fault_stack, tokens, tickets_coll, kafka):
    stack = fault_stack
    t_start = time.monotonic()
    load = Load(stack.gateway.base, tokens, "worker-sigterm", clients=20, kafka=kafka).start()
    victim, survivor = stack.workers
    figures = {}
    rc = takeover = since = None
    phase = Phase()
    try:
        with phase:
            load.sleep_until(5)
            since = victim.log_size()
            survivor_since = survivor.log_size()
            term = time.monotonic()
            victim.send_signal(signal.SIGTERM)
            rc = victim.wait_exit(25)
            figures["worker exit after SIGTERM"] = "%.2f s" % (time.monotonic() - term)
            # the survivor gets the victim's partitions (its next assignment)
            wait_until(lambda: any(r.get("msg") == "partitions assigned" and r.get("partitions")
                                   for r in survivor.log_records(survivor_since)),
                       45, "the survivor is assigned the stopped worker's partitions",
                       interval=0.05)
            takeover = time.monotonic() - term
            figures["survivor assigned after SIGTERM"] = "%.1f s" % takeover
            probe_all_partitions(kafka, timeout=45)
            figures["all partitions served after SIGTERM"] = "%.1f s" % (time.monotonic() - term)
            load.sleep_until(load.elapsed() + 5)
    finally:
        load.stop()
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60)
    rec = load.reconcile(tickets_coll)
    load.close()
    lat = latency_figures(load.attempts, 201)
    figures.update({"exit code": rc, "2xx p99": ms(lat["p99"]),
                    "settled after load": "%.1f s" % settled})
    figures.update(phase.note())
    record("4b. worker SIGTERM", rec, time.monotonic() - t_start, **figures)
    phase.reraise()

    assert rc == 0, "worker exit code %r: %s" % (rc, victim.describe())
    log = victim.log_text(since)
    assert "drain timed out" not in log, victim.describe()
    assert stack.gateway.alive and stack.workers[1].alive
    assert not [a for a in load.attempts if a.outcome == TIMEOUT]
    rec.assert_clean()
    # "leaves the group": the survivor must not wait for the session timeout
    assert takeover < REQUEST_TIMEOUT_S, (
        "the stopped worker's partitions went to the survivor only %.1f s after SIGTERM "
        "(worker exited after %s): it did not leave the group, its partitions waited for "
        "session.timeout.ms and %d request(s) got 504 meanwhile" % (
            takeover, figures["worker exit after SIGTERM"], rec.s504))
