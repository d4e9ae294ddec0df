"""Item 3: a customer sees and replies to their own team's tickets only."""

from bson import ObjectId

from helpers.api import MSG_REPLIED, expect_error, expect_ok

NOT_FOUND = "Ticket not found"


def test_customer_of_other_team_gets_404_replying(api, tokens, tickets_coll):
    owner = tokens.customer()
    outsider = tokens.customer()
    ticket = api.new_ticket(owner)
    expect_error(api.create_reply(outsider, ticket["_id"]), 404, NOT_FOUND)
    doc = tickets_coll.find_one({"_id": ObjectId(ticket["_id"])})
    assert doc["__v"] == 0 and doc["response"] == [], "a refused reply changed the ticket"
    assert api.list_tickets(owner) == [ticket]


def test_same_user_id_in_other_team_gets_404(api, tokens):
    owner = tokens.customer()
    same_sub_other_team = tokens.customer(sub=owner.sub)
    ticket = api.new_ticket(owner)
    expect_error(api.create_reply(same_sub_other_team, ticket["_id"]), 404, NOT_FOUND)
    assert api.list_tickets(same_sub_other_team) == []


def test_customer_of_other_team_does_not_see_ticket(api, tokens):
    owner = tokens.customer()
    outsider = tokens.customer()
    ticket = api.new_ticket(owner)
    own = api.new_ticket(outsider)
    listed = api.list_tickets(outsider)
    assert [t["_id"] for t in listed] == [own["_id"]]
    assert ticket["_id"] not in [t["_id"] for t in listed]


def test_other_customer_of_same_team_sees_and_replies(api, tokens):
    owner = tokens.customer()
    colleague = tokens.customer(team=owner.team)
    ticket = api.new_ticket(owner)
    assert api.list_tickets(colleague) == [ticket]
    data = expect_ok(api.create_reply(colleague, ticket["_id"]), 200, MSG_REPLIED)
    assert data["creatorId"] == owner.sub
    assert data["response"][0]["creatorId"] == colleague.sub
    assert data["response"][0]["creatorType"] == "customer"


def test_admin_can_reply_to_any_team(api, tokens, admin):
    owner_a = tokens.customer()
    owner_b = tokens.customer()
    ta = api.new_ticket(owner_a)
    tb = api.new_ticket(owner_b)
    ra = expect_ok(api.admin_create_reply(admin, ta["_id"]), 200, MSG_REPLIED)
    rb = expect_ok(api.admin_create_reply(admin, tb["_id"]), 200, MSG_REPLIED)
    assert ra["response"][0]["creatorId"] == admin.sub
    assert rb["response"][0]["creatorType"] == "admin"
    # each owner sees the admin's reply on their ticket, and only their ticket
    assert api.list_tickets(owner_a) == [ra]
    assert api.list_tickets(owner_b) == [rb]


def test_unknown_ticket_is_404_for_customer_and_admin(api, customer, admin):
    unknown = str(ObjectId())
    expect_error(api.create_reply(customer, unknown), 404, NOT_FOUND)
    expect_error(api.admin_create_reply(admin, unknown), 404, NOT_FOUND)


def test_customer_reply_to_another_teams_ticket_matches_unknown_ticket(api, tokens):
    """Do not leak existence: the answer is the same as for an id nobody has."""
    owner = tokens.customer()
    outsider = tokens.customer()
    ticket = api.new_ticket(owner)
    r_other = api.create_reply(outsider, ticket["_id"])
    r_unknown = api.create_reply(outsider, str(ObjectId()))
    assert (r_other.status_code, r_other.text) == (r_unknown.status_code, r_unknown.text)
