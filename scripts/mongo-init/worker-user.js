// The worker's own database user: readWrite on `ticketing` only (the root
// user of MONGO_INITDB_ROOT_* stays for administration). Its password is the
// Docker secret mongo_worker_password; the worker gets the matching URI as
// the secret mongodb_uri_worker (MONGODB_URI_FILE). Runs once, on an empty
// data volume, like every script of /docker-entrypoint-initdb.d.
const fs = require("fs");
const password = fs.readFileSync("/run/secrets/mongo_worker_password", "utf8").trim();
db.getSiblingDB("ticketing").createUser({
  user: "ticket-worker",
  pwd: password,
  roles: [{ role: "readWrite", db: "ticketing" }],
});
