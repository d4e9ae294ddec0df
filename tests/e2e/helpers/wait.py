"""Bounded polling."""

import time


def wait_until(predicate, timeout, what, interval=0.1):
    """Poll `predicate` until it returns a truthy value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %.0f s (last: %r)" % (what, timeout, last))
        time.sleep(interval)


def assert_stays(predicate, seconds, what, interval=0.1):
    """A "nothing happened" check: poll `predicate` (truthy = it happened)
    for the whole of `seconds` and fail as soon as it does. A single look
    after a sleep passes when the effect is merely late; this watches the
    whole bound."""
    deadline = time.monotonic() + seconds
    while True:
        got = predicate()
        if got:
            raise AssertionError("%s (seen %.1f s before the end of a %.0f s watch): %r"
                                 % (what, deadline - time.monotonic(), seconds, got))
        if time.monotonic() > deadline:
            return
        time.sleep(interval)
