"""Times the worker's MongoDB query shapes directly against the bench
database (one connection, pymongo) and prints a markdown table. Run by
bench/run.sh with the test venv's Python, after the load runs (and after
`--tickets N` preloaded the collection, bench/preload.py).

The shapes are those of worker/wk_tickets.c and of the list pages
(DESIGN.md "Lists"): newest first, sort {createdAt:-1, _id:-1}, limit
page+1, a later page continues below the cursor's createdAt.

usage: dbprobe.py MONGODB_URI BACKEND [SECONDS_PER_ROW]
"""

import datetime
import statistics
import sys
import time

import bson
import pymongo

PAGE = 50
NEWEST = [("createdAt", -1), ("_id", -1)]


def timed(fn, budget_s, most=50, least=3):
    """Runs fn once to warm up, then until budget_s is spent (at least
    `least`, at most `most` times); returns (p50 ms, min ms, runs, result)."""
    result = fn()
    times = []
    spent = 0.0
    while len(times) < least or (spent < budget_s and len(times) < most):
        t0 = time.perf_counter()
        fn()
        took = time.perf_counter() - t0
        times.append(took * 1000.0)
        spent += took
    return statistics.median(times), min(times), len(times), result


def main(argv):
    uri, backend = argv[1], argv[2]
    budget = float(argv[3]) if len(argv) > 3 else 3.0
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    tickets = client.get_default_database().tickets
    total = tickets.count_documents({})
    # Ids to read and reply to: without filter and sort FerretDB pushes the
    # LIMIT down on either backend, so this does not scan.
    sample = [d["_id"] for d in tickets.find({}, {"_id": 1}).limit(200)]
    if not sample:
        sys.exit("dbprobe: the tickets collection is empty")
    one = tickets.find_one({"_id": sample[len(sample) // 2]})
    team = one["teamId"]
    # A cursor half-way down the admin list (a deep later page); once, unindexed.
    middle = list(tickets.find({}, {"createdAt": 1}).sort(NEWEST).skip(total // 2).limit(1))[0]
    cursor = middle["createdAt"]
    turn = {"i": 0}

    def next_id():
        turn["i"] += 1
        return sample[turn["i"] % len(sample)]

    def read():
        return [tickets.find_one({"_id": next_id()})]

    def push():
        now = datetime.datetime.now(datetime.timezone.utc)
        reply = {"_id": bson.ObjectId(), "creatorId": "bench-probe", "creatorType": "customer",
                 "description": "probe", "createdAt": now, "updatedAt": now}
        return [tickets.find_one_and_update(
            {"_id": next_id()}, {"$push": {"response": reply}, "$set": {"updatedAt": now},
                                 "$inc": {"__v": 1}},
            return_document=pymongo.ReturnDocument.AFTER)]

    def page(filter_):
        return lambda: list(tickets.find(filter_).sort(NEWEST).limit(PAGE + 1))

    rows = [
        ("read by `_id` (get-ticket; first half of a reply)", read),
        ("`$push` reply by `_id` (findAndModify)", push),
        ("team list, first page (`teamId`)", page({"teamId": team})),
        ("admin list, first page (no filter)", page({})),
        ("admin list by `status` (`open`), first page", page({"status": "open"})),
        ("admin list by `status` `$in` [open, pending], first page",
         page({"status": {"$in": ["open", "pending"]}})),
        ("admin list, later page (`createdAt` `$lt` cursor, half-way down)",
         page({"createdAt": {"$lt": cursor}})),
        ("admin list, tie page (`createdAt` = cursor, `_id` `$lt`)",
         page({"createdAt": cursor, "_id": {"$lt": middle["_id"]}})),
    ]
    print("backend **%s**, %d tickets in the collection (team `%s`: %d); one connection, "
          "p50 of up to 50 runs or %.0f s per row" % (
              backend, total, team, tickets.count_documents({"teamId": team}), budget))
    print()
    print("| query | returned | p50 ms | min ms | runs |")
    print("|---|---:|---:|---:|---:|")
    for name, fn in rows:
        p50, best, runs, result = timed(fn, budget)
        print("| %s | %d | %.2f | %.2f | %d |" % (name, len(result), p50, best, runs))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
