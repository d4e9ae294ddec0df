"""Issue 11, group commit of replies: consecutive replies of a batch to
distinct tickets are stored by one unordered update (worker/wk_replies_bulk)
and answered from the tickets as the update leaves them. A user must not be
able to tell: the same scenario sent as one burst and sent one message at a
time gets the same answers and the same events (ids and times aside), stores
the same tickets, keeps each ticket's order and status moves, refuses only
the closed ticket (409) and the stale If-Match (412), and a redelivered reply
is answered as the first time and adds nothing."""

import re

from bson import ObjectId

from helpers import metrics as prom
from helpers.api import MSG_FETCHED, MSG_REPLIED, expect_ok
from helpers.kafka import COMMANDS, EVENTS, new_id, reply_command
from helpers.ops import burst, worker_holding

MSG_UPDATED = "Ticket updated successfully!"
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BULK = "ticket_worker_replies_bulk_total"


def _set_status(api, admin, ticket_id, status):
    expect_ok(api.request("POST", "/admin-update-ticket", admin.token, {"status": status},
                          params={"id": ticket_id}), 200, MSG_UPDATED)


def _reply(ticket_id, reply_id, who, description, internal=None, if_match=None):
    command = reply_command(ticket_id, reply_id, team=who.team, actor_id=who.sub, role=who.role,
                            description=description)
    if internal is not None:
        command["internal"] = internal
    if if_match is not None:
        command["ifMatch"] = if_match
    return command


class Scenario:
    """Tickets in known states and a sequence of reply commands to them, with
    the status and message each must get. Built afresh for each run."""

    def __init__(self, api, tokens):
        self.customer = tokens.customer()
        self.stranger = tokens.customer()
        self.admin = tokens.admin()
        self.ids = {}  # placeholder name -> real id, for comparing two runs
        for name in ("t1", "t2", "t3", "t4", "t5", "closed", "stale"):
            self.ids[name] = api.new_ticket(self.customer)["_id"]
        for name in ("t1", "t2", "t3", "t4", "stale"):
            _set_status(api, self.admin, self.ids[name], "open")
        _set_status(api, self.admin, self.ids["closed"], "closed")
        for name in ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "rc", "rs", "rx", "ry"):
            self.ids[name] = new_id()
        self.ids["gone"] = new_id()
        self.ids["team"], self.ids["stranger-team"] = self.customer.team, self.stranger.team
        self.ids["customer"], self.ids["admin"], self.ids["stranger"] = (
            self.customer.sub, self.admin.sub, self.stranger.sub)
        i, c, a = self.ids, self.customer, self.admin
        first = _reply(i["t1"], i["r1"], a, "Admin answers t1.")  # open -> pending
        note = _reply(i["t3"], i["r3"], a, "Internal note on t3.", internal=True)
        self.steps = [
            (first, 200, MSG_REPLIED),
            (_reply(i["t2"], i["r2"], a, "Admin answers t2."), 200, MSG_REPLIED),  # open -> pending
            (note, 200, MSG_REPLIED),  # no status move
            (_reply(i["t4"], i["r4"], c, "Customer on open t4."), 200, MSG_REPLIED),  # stays open
            (_reply(i["closed"], i["rc"], c, "Too late."), 409, "Ticket is closed"),
            (_reply(i["stale"], i["rs"], c, "Stale.", if_match=7), 412,
             "Ticket was modified by someone else"),
            (_reply(i["t5"], i["r5"], c, "Customer on created t5."), 200, MSG_REPLIED),  # stays created
            (_reply(i["gone"], i["rx"], c, "Nobody home."), 404, "Ticket not found"),
            (_reply(i["t2"], i["ry"], self.stranger, "Not my team."), 404, "Ticket not found"),
            (first, 200, MSG_REPLIED),  # redelivered: the second to t1 starts the next group
            (_reply(i["t1"], i["r6"], c, "Customer back on t1."), 200, MSG_REPLIED),  # pending -> open
            (note, 200, MSG_REPLIED),  # redelivered note
            (_reply(i["t3"], i["r7"], c, "Customer on t3."), 200, MSG_REPLIED),  # hides the note
        ]

    def normalize(self, value):
        """value with every id of this scenario replaced by its name and every time by <time>."""
        names = {v: k for k, v in self.ids.items()}
        if isinstance(value, dict):
            return {k: self.normalize(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.normalize(v) for v in value)
        if isinstance(value, str):
            if ISO_TIME.match(value):
                return "<time>"
            for real, name in names.items():
                value = value.replace(real, "<%s>" % name)
        return value


def _run(kafka, scenario, one_by_one, partition, worker):
    items = [(COMMANDS, value, "bulk-replies", partition) for value, _, _ in scenario.steps]
    if one_by_one:
        return [kafka.request_many([item], timeout=30)[0] for item in items]
    return burst(kafka, worker, items)


def _events_of(events, scenario):
    """The ticket.replied and ticket.status_changed events of the scenario's
    replies, normalized, in the order they were published."""
    reply_ids = {scenario.ids[n] for n in ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "rc", "rs", "rx", "ry")}
    seen = []
    for message in events.messages:
        event = message.json()
        if event.get("eventId", "").split(":", 1)[-1] in reply_ids:
            seen.append(scenario.normalize(event))
    return seen


def _stored(tickets_coll, scenario):
    stored = {}
    for name in ("t1", "t2", "t3", "t4", "t5", "closed", "stale"):
        ticket = tickets_coll.find_one({"_id": ObjectId(scenario.ids[name])})
        stored[name] = {
            "status": ticket["status"], "__v": ticket["__v"],
            "response": [(str(r["_id"]), r.get("internal", False), r.get("statusFrom"), r.get("statusTo"))
                         for r in ticket["response"]],
        }
    return scenario.normalize(stored)


def _check(api, tickets_coll, scenario, answers):
    i = scenario.ids
    for (value, status, message), (obj, _, _) in zip(scenario.steps, answers):
        assert obj.get("status") == status and obj.get("message") == message, (value, obj)
    data = [obj.get("data") for obj, _, _ in answers]
    # A redelivery is answered as the first time: the first answer was built
    # from the ticket as the bulk update left it, the second from the stored one.
    assert data[9] == data[0], "the redelivered reply to t1 was answered differently"
    assert data[11] == data[2], "the redelivered note was answered differently"
    assert [r["_id"] for r in data[12]["response"]] == [i["r7"]], "a customer saw the internal note"
    # The last answer for each ticket is the ticket as stored, as its viewer reads it.
    assert data[10] == expect_ok(api.get_ticket(scenario.customer, i["t1"]), 200, MSG_FETCHED)
    assert data[1] == expect_ok(api.admin_get_ticket(scenario.admin, i["t2"]), 200, MSG_FETCHED)
    assert data[12] == expect_ok(api.get_ticket(scenario.customer, i["t3"]), 200, MSG_FETCHED)
    assert data[3] == expect_ok(api.get_ticket(scenario.customer, i["t4"]), 200, MSG_FETCHED)
    assert data[6] == expect_ok(api.get_ticket(scenario.customer, i["t5"]), 200, MSG_FETCHED)
    stored = _stored(tickets_coll, scenario)
    assert stored["t1"] == {"status": "open", "__v": 3, "response": [
        ("<r1>", False, "open", "pending"), ("<r6>", False, "pending", "open")]}, stored["t1"]
    assert stored["t2"] == {"status": "pending", "__v": 2, "response": [("<r2>", False, "open", "pending")]}
    assert stored["t3"] == {"status": "open", "__v": 3, "response": [
        ("<r3>", True, None, None), ("<r7>", False, None, None)]}, stored["t3"]
    assert stored["t4"] == {"status": "open", "__v": 2, "response": [("<r4>", False, None, None)]}
    assert stored["t5"] == {"status": "created", "__v": 1, "response": [("<r5>", False, None, None)]}
    assert stored["closed"]["response"] == [] and stored["stale"]["response"] == []
    assert stored["closed"]["__v"] == 1 and stored["stale"]["__v"] == 1, "a refused reply changed something"
    return stored


def _normalized_answers(scenario, answers):
    return [scenario.normalize(obj) for obj, _, _ in answers]


def _wait_events(events, scenario):
    i = scenario.ids
    expected = ["replied:" + i[n] for n in ("r1", "r2", "r3", "r4", "r5", "r6", "r7")]
    expected += ["status_changed:" + i[n] for n in ("r1", "r2", "r6")]
    for event_id in expected:
        events.wait_for(lambda m, e=event_id: m.json().get("eventId") == e, timeout=20, what=event_id)
    events.wait_quiet(1.0)


def test_a_burst_of_replies_answers_announces_and_stores_as_one_by_one(api, kafka, taps, tickets_coll, tokens,
                                                                       stack, procs):
    worker, url, partition = worker_holding(procs, kafka, COMMANDS)
    events = taps(EVENTS)

    reference = Scenario(api, tokens)
    reference_answers = _run(kafka, reference, True, partition, worker)
    reference_stored = _check(api, tickets_coll, reference, reference_answers)
    _wait_events(events, reference)

    before = prom.value(prom.scrape(url + "/metrics")[0], BULK)
    assert before is not None, BULK + " is not exported from the start"
    burst = Scenario(api, tokens)
    burst_answers = _run(kafka, burst, False, partition, worker)
    burst_stored = _check(api, tickets_coll, burst, burst_answers)
    _wait_events(events, burst)
    after = prom.value(prom.scrape(url + "/metrics")[0], BULK)
    assert after > before, "no reply of the burst went through the bulk update (%s %s)" % (before, after)

    assert _normalized_answers(burst, burst_answers) == _normalized_answers(reference, reference_answers)
    assert burst_stored == reference_stored
    burst_events = [e for e in _events_of(events, burst)]
    reference_events = [e for e in _events_of(events, reference)]
    # The same events with the same ids and shapes; a redelivery announces its reply again.
    assert sorted(map(repr, burst_events)) == sorted(map(repr, reference_events))
    replied_r1 = [e for e in burst_events if e["eventId"] == "replied:<r1>"]
    assert len(replied_r1) >= 2 and all(e == replied_r1[0] for e in replied_r1)


def test_many_replies_to_many_tickets_in_one_burst_each_stored_once(api, kafka, tickets_coll, tokens):
    customer, admin = tokens.customer(), tokens.admin()
    tickets = [api.new_ticket(customer)["_id"] for _ in range(24)]
    for tid in tickets[:12]:
        _set_status(api, admin, tid, "open")
    replies = [(tid, new_id()) for tid in tickets]
    steps = []
    for n, (tid, rid) in enumerate(replies):
        who = admin if n % 2 == 0 else customer
        steps.append(_reply(tid, rid, who, "Reply %d." % n))
    steps += [steps[3], steps[0], steps[17]]  # redeliveries inside the burst
    answers = kafka.request_many([(COMMANDS, value, "bulk-many", 0) for value in steps], timeout=60)
    for value, (obj, _, _) in zip(steps, answers):
        assert obj.get("status") == 200 and obj.get("message") == MSG_REPLIED, (value, obj)
    assert answers[24][0]["data"] == answers[3][0]["data"]
    assert answers[25][0]["data"] == answers[0][0]["data"]
    assert answers[26][0]["data"] == answers[17][0]["data"]
    for n, (tid, rid) in enumerate(replies):
        ticket = tickets_coll.find_one({"_id": ObjectId(tid)})
        assert [str(r["_id"]) for r in ticket["response"]] == [rid], ticket
        assert ticket["__v"] == (2 if n < 12 else 1)
        # an admin's public reply moves open to pending; a customer's on open, or anything on created, nothing
        assert ticket["status"] == ("pending" if n < 12 and n % 2 == 0 else "open" if n < 12 else "created")
