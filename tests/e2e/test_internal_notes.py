"""Issue 12, internal notes: an admin reply with "internal": true is stored
in the ticket's response list, shown to admins with "internal":true and
never to customers: not in their team's list, not in get-ticket, not in the
answer to their own reply (and the admin's answer is the admin's view). It
changes no status, bumps __v like any change, and emits ticket.replied with
internal: true."""

from helpers.api import (MSG_FETCHED, MSG_REPLIED, SEED_ADMIN_REPLY_REQUEST,
                         SEED_CUSTOMER_REPLY_REQUEST, SEED_REPLY_KEYS, SEED_TICKET_KEYS,
                         assert_ticket_shape, expect_error, expect_ok, find_key)
from helpers.kafka import EVENTS

MSG_UPDATED = "Ticket updated successfully!"
NOTE = {"description": "Customer is on the legacy plan; do not offer the refund.", "internal": True}


def _note(api, admin, ticket_id, body=None):
    return expect_ok(api.admin_create_reply(admin, ticket_id, dict(body or NOTE)), 200, MSG_REPLIED)


def _customer_sees(api, customer, ticket_id):
    """get-ticket and the team list, as the customer: (ticket, etag)."""
    resp = api.get_ticket(customer, ticket_id)
    ticket = expect_ok(resp, 200, MSG_FETCHED)
    listed = [t for t in api.list_tickets(customer) if t["_id"] == ticket_id]
    assert listed == [ticket], "the list and get-ticket disagree: %r / %r" % (listed, ticket)
    return ticket, resp.headers.get("ETag")


def _admin_sees(api, admin, ticket_id):
    resp = api.admin_get_ticket(admin, ticket_id)
    return expect_ok(resp, 200, MSG_FETCHED), resp.headers.get("ETag")


def _ids(ticket):
    return [entry["_id"] for entry in ticket["response"]]


def test_internal_note_hidden_from_customers_shown_to_admins(api, tokens):
    customer = tokens.customer()
    admin = tokens.admin()
    ticket = api.new_ticket(customer)
    tid = ticket["_id"]
    public_customer = expect_ok(api.create_reply(customer, tid), 200, MSG_REPLIED)["response"][-1]
    public_admin = expect_ok(api.admin_create_reply(admin, tid), 200, MSG_REPLIED)["response"][-1]

    # The admin's own answer shows the note, last, marked, after the seed's fields.
    answered = _note(api, admin, tid)
    note = answered["response"][-1]
    assert list(note.keys()) == SEED_REPLY_KEYS + ["internal"], note
    assert note["internal"] is True and note["description"] == NOTE["description"]
    assert note["creatorType"] == "admin" and note["creatorId"] == admin.sub
    assert _ids(answered) == [public_customer["_id"], public_admin["_id"], note["_id"]]
    assert answered["__v"] == 3

    # 1 and 2: the customer's get-ticket and team list do not have it; __v and
    # the ETag still count it (the same as the admin's).
    seen, etag = _customer_sees(api, customer, tid)
    assert _ids(seen) == [public_customer["_id"], public_admin["_id"]]
    assert not find_key(seen, "internal") and NOTE["description"] not in str(seen)
    assert list(seen.keys()) == SEED_TICKET_KEYS
    assert seen["__v"] == 3 and etag == '"3"'
    admin_view, admin_etag = _admin_sees(api, admin, tid)
    assert admin_etag == etag
    assert admin_view["response"][-1] == note

    # 3: the answer to the customer's own reply does not have it either.
    replied = expect_ok(api.create_reply(customer, tid, {"description": "Any news?"}), 200, MSG_REPLIED)
    assert _ids(replied) == [public_customer["_id"], public_admin["_id"], replied["response"][-1]["_id"]]
    assert not find_key(replied, "internal") and NOTE["description"] not in str(replied)
    assert replied["__v"] == 4

    # 4: after the admin's note (whose answer is the admin's view) the
    # customer's next reads and replies still do not show it.
    second = _note(api, admin, tid, {"description": "Escalated to billing.", "internal": True})
    assert second["response"][-1]["internal"] is True
    assert [e.get("internal") for e in second["response"]] == [None, None, True, None, True]
    seen, etag = _customer_sees(api, customer, tid)
    assert len(seen["response"]) == 3 and not find_key(seen, "internal")
    assert seen["__v"] == 5 and etag == '"5"'
    again = expect_ok(api.create_reply(customer, tid, {"description": "Hello?"}), 200, MSG_REPLIED)
    assert len(again["response"]) == 4 and not find_key(again, "internal")

    # The answer to the customer's resolve-ticket does not have them either.
    resolved = expect_ok(api.request("POST", "/resolve-ticket", customer.token, params={"id": tid}),
                         200, "Ticket resolved successfully!")
    assert resolved["status"] == "resolved" and len(resolved["response"]) == 4
    assert not find_key(resolved, "internal") and NOTE["description"] not in str(resolved)

    # Admins see every entry, in order, in admin-get-ticket and their list.
    admin_view, _ = _admin_sees(api, admin, tid)
    assert [e.get("internal") for e in admin_view["response"]] == [None, None, True, None, True, None]
    listed = [t for t in api.list_all(admin, {"team": customer.team}) if t["_id"] == tid]
    assert listed == [admin_view]


def test_internal_false_is_a_public_reply(api, tokens):
    customer = tokens.customer()
    admin = tokens.admin()
    tid = api.new_ticket(customer)["_id"]
    answered = _note(api, admin, tid, {"description": "Public after all.", "internal": False})
    assert list(answered["response"][-1].keys()) == SEED_REPLY_KEYS
    seen, _ = _customer_sees(api, customer, tid)
    assert seen == answered
    assert_ticket_shape(seen)


def test_internal_note_does_not_change_the_status(api, tokens):
    customer = tokens.customer()
    admin = tokens.admin()
    tid = api.new_ticket(customer)["_id"]
    # created stays created through any reply; an internal note on it too.
    assert _note(api, admin, tid)["status"] == "created"
    # open: a public admin reply would move it to pending; a note does not.
    opened = expect_ok(api.request("POST", "/admin-update-ticket", admin.token, {"status": "open"},
                                   params={"id": tid}), 200, MSG_UPDATED)
    assert opened["status"] == "open"
    noted = _note(api, admin, tid)
    assert noted["status"] == "open"
    assert noted.get("statusChangedAt") == opened.get("statusChangedAt")
    seen, _ = _customer_sees(api, customer, tid)
    assert seen["status"] == "open"
    # pending: a customer reply would reopen it; a note does not.
    expect_ok(api.admin_create_reply(admin, tid), 200, MSG_REPLIED)
    assert _note(api, admin, tid)["status"] == "pending"


def test_internal_note_event(api, tokens, taps):
    import schema_check
    customer = tokens.customer()
    admin = tokens.admin()
    events = taps(EVENTS)
    tid = api.new_ticket(customer)["_id"]
    public_id = expect_ok(api.admin_create_reply(admin, tid), 200, MSG_REPLIED)["response"][-1]["_id"]
    note_id = _note(api, admin, tid)["response"][-1]["_id"]
    found = {}
    for want in (public_id, note_id):
        msg = events.wait_for(lambda m, w=want: m.json().get("eventId") == "replied:" + w,
                              what="ticket.replied of " + want)[0]
        found[want] = schema_check.validate_kafka_message(EVENTS, msg.value, headers=msg.raw_headers,
                                                          key=msg.key)
    noted = found[note_id]
    assert noted["type"] == "ticket.replied" and noted["internal"] is True
    assert noted["reply"]["internal"] is True and noted["reply"]["_id"] == note_id
    assert noted["ticket"]["response"][-1] == noted["reply"]  # services get the whole ticket
    assert noted["teamId"] == customer.team and noted["ticketId"] == tid
    public = found[public_id]
    assert "internal" not in public and "internal" not in public["reply"]


def test_customers_cannot_write_internal_notes(api, tokens):
    customer = tokens.customer()
    admin = tokens.admin()
    tid = api.new_ticket(customer)["_id"]
    for value in (True, False):
        resp = api.create_reply(customer, tid, dict(SEED_CUSTOMER_REPLY_REQUEST, internal=value))
        expect_error(resp, 400, "Only admins write internal notes")
    for value in ("true", 1, None, [True]):
        resp = api.admin_create_reply(admin, tid, dict(SEED_ADMIN_REPLY_REQUEST, internal=value))
        expect_error(resp, 400, "Field 'internal' must be true or false")
    seen, etag = _customer_sees(api, customer, tid)
    assert seen["response"] == [] and seen["__v"] == 0 and etag == '"0"'


def test_a_ticket_without_notes_stays_as_the_seed(api, tokens):
    """Customer and admin see the very same bytes, with the seed's keys only."""
    customer = tokens.customer()
    admin = tokens.admin()
    tid = api.new_ticket(customer)["_id"]
    expect_ok(api.create_reply(customer, tid), 200, MSG_REPLIED)
    expect_ok(api.admin_create_reply(admin, tid), 200, MSG_REPLIED)
    as_customer = api.get_ticket(customer, tid)
    as_admin = api.admin_get_ticket(admin, tid)
    assert as_customer.content == as_admin.content
    ticket = expect_ok(as_customer, 200, MSG_FETCHED)
    assert_ticket_shape(ticket)
    assert not find_key(ticket, "internal")
