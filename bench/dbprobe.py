"""Times the worker's MongoDB queries directly against the bench database and
asks the server whether it pushes their filters down (FerretDB's explain
field `filterPushdown`); prints a markdown table. Run by bench/run.sh with
the test venv's Python (pymongo).

usage: dbprobe.py MONGODB_URI LIST_TEAM REPLY_IDS_FILE [REPEAT]
"""

import sys
import time

import bson
import pymongo


def timed(fn, repeat):
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat * 1000.0


def main(argv):
    uri, team, ids_file = argv[1], argv[2], argv[3]
    most = int(argv[4]) if len(argv) > 4 else 3
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    db = client.get_default_database()
    tickets = db.tickets
    total = tickets.count_documents({})
    with open(ids_file) as f:
        ticket_id = bson.ObjectId(f.readline().strip())
    version = tickets.find_one({"_id": ticket_id})["__v"]
    newest = [("createdAt", -1), ("_id", -1)]
    in_team = tickets.count_documents({"teamId": team})

    def explain(command):
        try:
            answer = db.command("explain", command)
        except pymongo.errors.PyMongoError:
            return "?"
        pushed = answer.get("filterPushdown")
        return "yes" if pushed else ("no" if pushed is not None else "n/a")

    rows = [
        ("find by `_id` (reply: read the ticket)", {"_id": ticket_id},
         lambda: list(tickets.find({"_id": ticket_id}).limit(1)), 20),
        ("find by `_id` + `__v` (reply: findAndModify filter)", {"_id": ticket_id, "__v": version},
         lambda: list(tickets.find({"_id": ticket_id, "__v": version})), 3),
        ("team list: `teamId`, newest first", {"teamId": team},
         lambda: list(tickets.find({"teamId": team}).sort(newest)), 3),
        ("admin list: all, newest first", {},
         lambda: list(tickets.find({}).sort(newest)), 2),
    ]
    print("| query | documents in collection | returned | filter pushed down | ms per query | µs per document in collection |")
    print("|---|---:|---:|---|---:|---:|")
    for name, query, fetch, repeat in rows:
        returned = len(fetch())
        ms = timed(fetch, min(repeat, most))
        push = explain({"find": "tickets", "filter": query}) if query else "n/a"
        print("| %s | %d | %d | %s | %.2f | %.1f |" % (name, total, returned, push, ms, ms * 1000.0 / max(total, 1)))
    print()
    print("(team `%s` has %d tickets)" % (team, in_team))


if __name__ == "__main__":
    main(sys.argv)
