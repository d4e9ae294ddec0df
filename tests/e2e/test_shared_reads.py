"""Issue 11: identical queries waiting in one batch are answered from one
database read (worker/wk_share). Whatever the worker shares, each requester
must get exactly the answer a read of its own would give: its own team's
tickets, its own page size, and every ticket acknowledged before it asked."""

from concurrent.futures import ThreadPoolExecutor

from helpers.api import MSG_FETCHED, expect_ok

ROUNDS = 3
EACH = 6  # concurrent lists per requester and round (well within the rate limit)


def _ids(tickets):
    return [t["_id"] for t in tickets]


def test_concurrent_lists_each_get_their_own_answer(api, tokens):
    owner = tokens.customer()
    colleague = tokens.customer(team=owner.team)
    outsider = tokens.customer()
    mine = [api.new_ticket(owner)]
    theirs = [api.new_ticket(outsider)]
    with ThreadPoolExecutor(max_workers=4 * EACH) as pool:
        for _ in range(ROUNDS):
            # Acknowledged before any list below is sent: every list must see it.
            mine.insert(0, api.new_ticket(owner))
            theirs.insert(0, api.new_ticket(outsider))
            asks = []
            for _ in range(EACH):
                asks.append(("full", owner, pool.submit(api.get_tickets, owner)))
                asks.append(("full", colleague, pool.submit(api.get_tickets, colleague)))
                asks.append(("one", owner, pool.submit(api.get_tickets, owner, params={"limit": 1})))
                asks.append(("full", outsider, pool.submit(api.get_tickets, outsider)))
            for shape, user, future in asks:
                listed = _ids(expect_ok(future.result(), 200, MSG_FETCHED))
                expected = _ids(theirs if user is outsider else mine)
                if shape == "one":
                    expected = expected[:1]
                assert listed == expected, "%s list of %s: got %s, expected %s" % (
                    shape, user.sub, listed, expected)
