"""Issue 10: every list query shape has its index, in the worker's database
and in the compose file's mongo init script alike.

A query shape is what wk_tickets' list filter can be: a scope (the team, or
none for admins) and at most one filter member that an index leads with;
the sort is always createdAt desc, _id desc. The index that serves it has the
equality members first, then the sort: a page is then one index range."""

import json
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
INIT_SCRIPT = REPO / "scripts" / "mongo-init" / "tickets-indexes.js"
COMPOSE = REPO / "docker-compose.yml"

SCOPES = [(), ("teamId",)]
FILTER_MEMBERS = ["status", "priority", "category", "creatorId", "assigneeId"]
SORT = [("createdAt", -1), ("_id", -1)]


def query_shapes():
    shapes = []
    for scope in SCOPES:
        shapes.append(scope)
        for member in FILTER_MEMBERS:
            shapes.append(scope + (member,))
    return shapes


def index_for(shape):
    return [(field, 1) for field in shape] + SORT


def script_indexes():
    text = INIT_SCRIPT.read_text(encoding="utf-8")
    match = re.search(r"const TICKET_INDEXES = (\[.*?\n\]);", text, re.S)
    assert match, "no TICKET_INDEXES array in " + str(INIT_SCRIPT)
    return {entry["name"]: list(entry["key"].items()) for entry in json.loads(match.group(1))}


def database_indexes(tickets_coll):
    return {name: [(field, int(direction)) for field, direction in info["key"]]
            for name, info in tickets_coll.index_information().items() if name != "_id_"}


def test_every_query_shape_has_its_index_in_the_database(stack, tickets_coll):
    present = list(database_indexes(tickets_coll).values())
    missing = [shape for shape in query_shapes() if index_for(shape) not in present]
    assert not missing, "query shapes without an index: %r (indexes: %r)" % (missing, present)


def test_compose_mongo_gets_the_same_indexes_as_the_worker(stack, tickets_coll):
    assert script_indexes() == database_indexes(tickets_coll)
    assert sorted(map(tuple, map(tuple, script_indexes().values()))) == sorted(
        tuple(index_for(shape)) for shape in query_shapes()), "an index no query shape needs"
    compose = COMPOSE.read_text(encoding="utf-8")
    assert "./scripts/mongo-init:/docker-entrypoint-initdb.d" in compose
