"""Fault 1: a worker killed (SIGKILL) mid-load.

Every 2xx-acknowledged create or reply is stored exactly once (events too); a request in flight
either completes (the other worker takes over) or gets 504 and is applied
at most once; the killed worker, restarted with its WORKER_ID, rejoins.
"""

import time

from helpers.kafka import probe_all_partitions

from faultlib import TIMEOUT, Load, Phase, latency_figures, ms, record, settle


def test_worker_sigkill_mid_load(fault_stack, tokens, tickets_coll, kafka):
    stack = fault_stack
    t_start = time.monotonic()
    load = Load(stack.gateway.base, tokens, "worker-kill", clients=20, kafka=kafka).start()
    figures = {}
    phase = Phase()
    try:
        with phase:
            load.sleep_until(5)
            victim = stack.workers[0]
            killed = time.monotonic()
            victim.kill()
            figures["killed at"] = "%.1f s" % load.elapsed()
            # every partition answers again: the survivor took the victim's over
            probe_all_partitions(kafka, timeout=45)
            figures["takeover"] = "%.1f s" % (time.monotonic() - killed)
            load.sleep_until(max(load.elapsed(), 10))
            stack.restart_worker(0)
            figures["restarted at"] = "%.1f s" % load.elapsed()
            load.sleep_until(max(load.elapsed() + 3, 15))
    finally:
        load.stop()
    settled = settle(tickets_coll, load.attempts, load.teams, timeout=60)
    rec = load.reconcile(tickets_coll)
    load.close()
    lat = latency_figures(load.attempts, 201)
    figures.update({"2xx p50": ms(lat["p50"]), "2xx p99": ms(lat["p99"]),
                    "settled after load": "%.1f s" % settled})
    figures.update(phase.note())
    record("1. worker SIGKILL", rec, time.monotonic() - t_start, **figures)
    phase.reraise()

    assert stack.gateway.alive, stack.gateway.describe()
    assert stack.workers[1].alive, stack.workers[1].describe()
    probe_all_partitions(kafka, timeout=45)  # the restarted worker serves too
    hung = [a for a in load.attempts if a.outcome == TIMEOUT]
    assert not hung, "%d request(s) got no answer within %.0f s" % (len(hung), load.timeout)
    assert rec.acked > 0
    rec.assert_clean()
