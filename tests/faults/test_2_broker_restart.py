"""Fault 2: the broker stops (SIGTERM) or crashes (SIGKILL) under load and
comes back ~10 s later on the same port with the same data.

While it is away the gateway answers 503 fast (no hang, no crash, bounded
memory); gateway and workers recover by themselves; nothing acknowledged
is lost.
"""

import os
import time

import pytest

from helpers.kafka import probe_all_partitions
from helpers.wait import wait_until

from faultlib import (CONN_ERROR, REFUSED, TIMEOUT, Load, Phase, RssSampler, counts,
                      latency_figures, ms, record, settle)

OUTAGE_S = 10
RECOVERY_BOUND_S = 60
RSS_GROWTH_BOUND_KIB = 64 * 1024
# ASan keeps freed memory in quarantine (256 MB by default): with sanitized
# binaries (./dev test --asan --faults) RSS says nothing about leaks, which
# LeakSanitizer reports at exit instead; the bound is then ASan's own.
SANITIZED = os.environ.get("TICKET_TEST_SANITIZED") == "1"
if SANITIZED:
    RSS_GROWTH_BOUND_KIB = 512 * 1024


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_broker_restart_under_load(fault_stack, tokens, tickets_coll, kafka, stackctl, how):
    stack = fault_stack
    gateway = stack.gateway
    t_start = time.monotonic()
    rss = RssSampler(gateway.pid).start()
    load = Load(gateway.base, tokens, "broker-" + how, clients=20, kafka=kafka).start()
    figures = {}
    recovered_at = probe_done_at = None
    phase = Phase()
    try:
        with phase:
            load.sleep_until(5)
            rss_before = rss.max_kib()
            figures["%s-kafka took" % how] = "%.1f s" % stackctl("%s-kafka" % how)
            down_at = load.elapsed()
            load.sleep_until(down_at + OUTAGE_S)
            figures["start-kafka took"] = "%.1f s" % stackctl("start-kafka")
            up_at = load.elapsed()
            wait_until(lambda: load.first_ack_after(up_at) is not None, RECOVERY_BOUND_S,
                       "a 2xx after the broker came back")
            recovered_at = up_at + load.first_ack_after(up_at)
            figures["first 2xx after broker up"] = "%.1f s" % (recovered_at - up_at)
            # the workers serve every partition again, by themselves
            probe_all_partitions(kafka, timeout=RECOVERY_BOUND_S)
            probe_done_at = load.elapsed()
            figures["all partitions served after broker up"] = "%.1f s" % (probe_done_at - up_at)
            load.sleep_until(probe_done_at + 5)
    finally:
        load.stop()
        rss.stop()
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60)
    rec = load.reconcile(tickets_coll)
    load.close()
    scenario = "2. broker %s, back after ~10 s" % ("SIGTERM" if how == "stop" else "SIGKILL")
    if phase.error:
        figures.update(phase.note())
        record(scenario, rec, time.monotonic() - t_start, **figures)
        phase.reraise()

    outage = load.between(down_at, up_at)
    lat503 = latency_figures(load.attempts, 503)
    lat503_outage = latency_figures(outage, 503)
    rss_max = rss.max_kib()
    after = load.between(probe_done_at, 1e9)
    figures.update({
        "requests while broker down": len(outage),
        "503 while down": lat503_outage["n"],
        "503 p50": ms(lat503["p50"]), "503 p99": ms(lat503["p99"]), "503 max": ms(lat503["max"]),
        "gateway VmRSS before/max": "%s/%s MiB%s" % (
            rss_before and rss_before // 1024, rss_max and rss_max // 1024,
            " (ASan build: bound %d MiB)" % (RSS_GROWTH_BOUND_KIB // 1024) if SANITIZED else ""),
        "2xx after recovery": "%d/%d" % (sum(a.acked for a in after), len(after)),
        "settled after load": "%.1f s" % settled})
    record(scenario, rec, time.monotonic() - t_start, **figures)

    assert gateway.alive, "gateway died: " + gateway.describe()
    for worker in stack.workers:
        assert worker.alive, "worker died: " + worker.describe()
    hung = [a for a in load.attempts if a.outcome == TIMEOUT]
    assert not hung, "%d request(s) hung past %.0f s" % (len(hung), load.timeout)
    broken = [a for a in load.attempts if a.outcome in (CONN_ERROR, REFUSED)]
    assert not broken, "connection errors: %s" % [a.message for a in broken[:3]]
    assert lat503_outage["n"] > 0, "no 503 while the broker was away: %r" % dict(counts(outage))
    assert lat503["p99"] < 1.0, "503 answers are slow: p99 %s, max %s" % (
        ms(lat503["p99"]), ms(lat503["max"]))
    assert rss_max - rss_before < RSS_GROWTH_BOUND_KIB, \
        "gateway VmRSS grew from %d to %d KiB" % (rss_before, rss_max)
    assert after and all(a.acked for a in after), \
        "after recovery not every request succeeded: %r" % sorted(
            {str(a.outcome) for a in after if not a.acked})
    rec.assert_clean()
