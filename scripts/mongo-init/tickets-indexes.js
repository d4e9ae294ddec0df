// Indexes of the tickets collection, for the compose file's mongo (run once,
// when its data volume is new, from /docker-entrypoint-initdb.d). The worker
// creates the same ones at start (worker/wk_store.c TICKET_INDEXES); this
// script lets a fresh database serve lists from an index before the first
// worker is up. tests/e2e/test_indexes.py holds both to the query shapes.
// One index per list query shape: equality members, then the sort.
const TICKET_INDEXES = [
  { "name": "newest_first", "key": { "createdAt": -1, "_id": -1 } },
  { "name": "team_newest_first", "key": { "teamId": 1, "createdAt": -1, "_id": -1 } },
  { "name": "status_newest_first", "key": { "status": 1, "createdAt": -1, "_id": -1 } },
  { "name": "team_status_newest_first", "key": { "teamId": 1, "status": 1, "createdAt": -1, "_id": -1 } },
  { "name": "priority_newest_first", "key": { "priority": 1, "createdAt": -1, "_id": -1 } },
  { "name": "team_priority_newest_first", "key": { "teamId": 1, "priority": 1, "createdAt": -1, "_id": -1 } },
  { "name": "category_newest_first", "key": { "category": 1, "createdAt": -1, "_id": -1 } },
  { "name": "team_category_newest_first", "key": { "teamId": 1, "category": 1, "createdAt": -1, "_id": -1 } },
  { "name": "creatorId_newest_first", "key": { "creatorId": 1, "createdAt": -1, "_id": -1 } },
  { "name": "team_creatorId_newest_first", "key": { "teamId": 1, "creatorId": 1, "createdAt": -1, "_id": -1 } },
  { "name": "assigneeId_newest_first", "key": { "assigneeId": 1, "createdAt": -1, "_id": -1 } },
  { "name": "team_assigneeId_newest_first", "key": { "teamId": 1, "assigneeId": 1, "createdAt": -1, "_id": -1 } }
];

const database = db.getSiblingDB("ticketing");
// Named as the worker names them, so its createIndexes finds them present.
for (const index of TICKET_INDEXES) {
  database.tickets.createIndex(index.key, { name: index.name });
}
database.idempotency_keys.createIndex({ createdAt: 1 }, { name: "forget_after_24h", expireAfterSeconds: 86400 });
