"""Preloads N tickets in T teams straight into the bench database (pymongo
insert_many in batches), in the worker's document shape and field order
(worker/wk_tickets.c create_ticket), with the worker's indexes created first
(wk_store.c: same names and keys, so the worker finds them present).

Tickets are spread evenly over the last 90 days (createdAt; the ObjectId's
time matches it) and round-robin over teams bench-team-0 .. bench-team-T-1;
status, priority and category cycle through their values, so each filter
value selects a fixed share. Prints one line: inserted, seconds, docs/s.

usage: preload.py MONGODB_URI N [TEAMS]
"""

import datetime
import os
import struct
import sys
import time

import bson
import pymongo

STATUSES = ["created", "open", "pending", "resolved", "closed"]
PRIORITIES = ["low", "medium", "high"]
CATEGORIES = ["Support", "Billing", "Technical", "Account", "Other"]
BATCH = 1000
SPAN_MS = 90 * 86400 * 1000


def object_id(when_ms, counter):
    """An ObjectId of time when_ms, unique within this run (counter) and
    across runs (5 random bytes)."""
    return bson.ObjectId(struct.pack(">I", when_ms // 1000) + RANDOM + struct.pack(">I", counter)[1:])


RANDOM = os.urandom(5)


def ticket(i, n, teams, now_ms):
    when = now_ms - SPAN_MS + (SPAN_MS * i) // max(n, 1)
    at = datetime.datetime.fromtimestamp(when / 1000.0, tz=datetime.timezone.utc)
    team = "bench-team-%d" % (i % teams)
    # Field order of create_ticket; a preloaded ticket looks like a new one
    # except for status (cycled, so status filters have something to select).
    return {
        "_id": object_id(when, i),
        "creatorId": "bench-user-%d" % (i % (teams * 4)),
        "creatorType": "customer",
        "category": CATEGORIES[i % len(CATEGORIES)],
        "subject": "Preloaded ticket %d" % i,
        "description": "A ticket preloaded by bench/preload.py to give the database its size.",
        "priority": PRIORITIES[i % len(PRIORITIES)],
        "status": STATUSES[(i // 7) % len(STATUSES)],
        "response": [],
        "createdAt": at,
        "updatedAt": at,
        "__v": 0,
        "teamId": team,
    }


def main(argv):
    uri, n = argv[1], int(argv[2])
    teams = int(argv[3]) if len(argv) > 3 else 500
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    tickets = client.get_default_database().tickets
    existing = {ix["name"] for ix in tickets.list_indexes()}
    wanted = [("team_newest_first", [("teamId", 1), ("createdAt", -1), ("_id", -1)]),
              ("newest_first", [("createdAt", -1), ("_id", -1)])]
    for name, keys in wanted:
        if name not in existing:
            tickets.create_index(keys, name=name)
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        batch = [ticket(i, n, teams, now_ms) for i in range(done, min(n, done + BATCH))]
        tickets.insert_many(batch, ordered=False)
        done += len(batch)
    took = time.perf_counter() - t0
    print("preloaded %d tickets in %d teams in %.1f s (%.0f/s)" % (done, teams, took, done / max(took, 1e-9)))


if __name__ == "__main__":
    main(sys.argv)
