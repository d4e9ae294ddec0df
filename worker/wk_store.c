/* wk_store — the MongoDB client pool and the tickets collection's indexes. */
#include "wk_store.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tk_log.h"


int wk_store_init(wk_store *store, const char *uri_text, char *err, size_t err_len) {
    bson_error_t error;
    memset(store, 0, sizeof *store);
    store->uri = mongoc_uri_new_with_error(uri_text, &error);
    if (store->uri == NULL) {
        snprintf(err, err_len, "MONGODB_URI is invalid: %s", error.message);
        return -1;
    }
    /* The driver waits 30 s by default before calling a server gone; an
     * outage must surface sooner so the lane can back off and retry. */
    if (!mongoc_uri_has_option(store->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       WK_STORE_SERVER_SELECTION_TIMEOUT_MS);
    /* The driver's default is 300 s: a hung server would hold a lane for
     * five minutes. Above maxTimeMS, so a slow server answers first. */
    if (!mongoc_uri_has_option(store->uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_SOCKETTIMEOUTMS, WK_STORE_SOCKET_TIMEOUT_MS);
    atomic_store(&store->has_conditional_push, true);
    const char *database = mongoc_uri_get_database(store->uri);
    store->database = bson_strdup(database != NULL && database[0] != '\0' ? database : "ticketing");
    store->pool = mongoc_client_pool_new(store->uri);
    if (store->pool == NULL) {
        snprintf(err, err_len, "cannot create the MongoDB client pool");
        goto fail;
    }
    mongoc_client_pool_set_error_api(store->pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_set_appname(store->pool, "ticket-worker");
    return 0;
fail:
    wk_store_close(store);
    return -1;
}

/* True when the collection already has an index of that name. FerretDB
 * 1.24 (SQLite) panics when asked to create an index that exists, so only
 * missing ones are created; MongoDB behaves the same either way.
 * @returns 1 present, 0 absent, -1 error in *error. */
static int has_index(mongoc_collection_t *collection, const char *name, bson_error_t *error) {
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(collection, NULL);
    const bson_t *index;
    int found = 0;
    while (found == 0 && mongoc_cursor_next(cursor, &index)) {
        bson_iter_t iter;
        if (bson_iter_init_find(&iter, index, "name") && BSON_ITER_HOLDS_UTF8(&iter) &&
            strcmp(bson_iter_utf8(&iter, NULL), name) == 0)
            found = 1;
    }
    if (found == 0 && mongoc_cursor_error(cursor, error)) found = -1;
    mongoc_cursor_destroy(cursor);
    return found;
}

typedef enum { INDEX_READY = 0, INDEX_UNREACHABLE = -1, INDEX_REFUSED = -3 } index_result;

static index_result ensure_index(wk_store *store, mongoc_client_t *client, const char *collection_name, bson_t *spec,
                                 char *err, size_t err_len) {
    bson_error_t error;
    bson_iter_t name;
    index_result rc = INDEX_UNREACHABLE;
    if (!bson_iter_init_find(&name, spec, "name")) return INDEX_REFUSED;
    mongoc_collection_t *collection = mongoc_client_get_collection(client, store->database, collection_name);
    int present = has_index(collection, bson_iter_utf8(&name, NULL), &error);
    if (present < 0) {
        snprintf(err, err_len, "listIndexes on %s failed: %s", collection_name, error.message);
    } else if (present == 1) {
        rc = INDEX_READY;
    } else {
        bson_t *command = BCON_NEW("createIndexes", BCON_UTF8(collection_name), "indexes", "[", BCON_DOCUMENT(spec),
                                   "]");
        bson_t reply;
        mongoc_database_t *database = mongoc_client_get_database(client, store->database);
        if (mongoc_database_write_command_with_opts(database, command, NULL, &reply, &error)) rc = INDEX_READY;
        else snprintf(err, err_len, "createIndexes on %s failed: %s", collection_name, error.message);
        bson_destroy(&reply);
        mongoc_database_destroy(database);
        bson_destroy(command);
    }
    if (rc != INDEX_READY && present >= 0 && !wk_store_is_transient(&error)) rc = INDEX_REFUSED;
    mongoc_collection_destroy(collection);
    return rc;
}

/* One index per list query shape (wk_tickets list_filter_new): the
 * equality members first, then the sort, so a page is an index range read
 * in order and costs what it returns. Scope is the team (customers, admins
 * with team=) or nothing (admins); each filter member gets one index with
 * and one without the team. A query with several filters uses one of them
 * and checks the rest on the few documents it reads. The same list is in
 * scripts/mongo-init/tickets-indexes.js for the compose file's mongo, and
 * tests/e2e/test_indexes.py holds both to the query shapes. */
static const struct {
    const char *name;
    const char *team;  /* "teamId" or NULL */
    const char *field; /* a filter member, or NULL */
} TICKET_INDEXES[] = {
    {"newest_first", NULL, NULL},
    {"team_newest_first", "teamId", NULL},
    {"status_newest_first", NULL, "status"},
    {"team_status_newest_first", "teamId", "status"},
    {"priority_newest_first", NULL, "priority"},
    {"team_priority_newest_first", "teamId", "priority"},
    {"category_newest_first", NULL, "category"},
    {"team_category_newest_first", "teamId", "category"},
    {"creatorId_newest_first", NULL, "creatorId"},
    {"team_creatorId_newest_first", "teamId", "creatorId"},
    {"assigneeId_newest_first", NULL, "assigneeId"},
    {"team_assigneeId_newest_first", "teamId", "assigneeId"},
};

static bson_t *ticket_index_spec_new(size_t i) {
    bson_t *spec = bson_new();
    bson_t key;
    BSON_APPEND_DOCUMENT_BEGIN(spec, "key", &key);
    if (TICKET_INDEXES[i].team != NULL) BSON_APPEND_INT32(&key, TICKET_INDEXES[i].team, 1);
    if (TICKET_INDEXES[i].field != NULL) BSON_APPEND_INT32(&key, TICKET_INDEXES[i].field, 1);
    BSON_APPEND_INT32(&key, "createdAt", -1);
    BSON_APPEND_INT32(&key, "_id", -1);
    bson_append_document_end(spec, &key);
    BSON_APPEND_UTF8(spec, "name", TICKET_INDEXES[i].name);
    return spec;
}

int wk_store_ensure_indexes(wk_store *store, char *err, size_t err_len) {
    /* Client retry keys forgotten after a day. */
    bson_t *ttl = BCON_NEW("key", "{", "createdAt", BCON_INT32(1), "}", "name", BCON_UTF8("forget_after_24h"),
                           "expireAfterSeconds", BCON_INT32(WK_IDEMPOTENCY_TTL_SECONDS));
    mongoc_client_t *client = wk_store_pop(store);
    index_result rc = INDEX_READY;
    for (size_t i = 0; rc == INDEX_READY && i < sizeof TICKET_INDEXES / sizeof TICKET_INDEXES[0]; i++) {
        bson_t *spec = ticket_index_spec_new(i);
        rc = ensure_index(store, client, WK_TICKETS_COLLECTION, spec, err, err_len);
        bson_destroy(spec);
    }
    if (rc == INDEX_READY) {
        char ttl_err[256];
        /* Expiry is also checked when a key is read, so a server without
         * TTL indexes only keeps old keys longer. */
        if (ensure_index(store, client, WK_IDEMPOTENCY_COLLECTION, ttl, ttl_err, sizeof ttl_err) == INDEX_REFUSED)
            tk_log_fields(TK_LOG_WARN, "no TTL index for idempotency keys", json_pack("{s:s}", "error", ttl_err));
    }
    atomic_store(&store->is_reachable, rc == INDEX_READY);
    wk_store_push(store, client);
    bson_destroy(ttl);
    return rc == INDEX_READY ? 0 : -1;
}

mongoc_client_t *wk_store_pop(wk_store *store) { return mongoc_client_pool_pop(store->pool); }

void wk_store_push(wk_store *store, mongoc_client_t *client) { mongoc_client_pool_push(store->pool, client); }

mongoc_collection_t *wk_store_tickets(wk_store *store, mongoc_client_t *client) {
    return mongoc_client_get_collection(client, store->database, WK_TICKETS_COLLECTION);
}

mongoc_collection_t *wk_store_idempotency_keys(wk_store *store, mongoc_client_t *client) {
    return mongoc_client_get_collection(client, store->database, WK_IDEMPOTENCY_COLLECTION);
}

bool wk_store_is_transient(const bson_error_t *error) {
    /* Server codes that mean "not now": shutdown, failover, network. */
    /* 50 MaxTimeMSExpired and 64 WriteConcernFailed: the outcome is unknown.
     * 1 InternalError: what FerretDB answers when its PostgreSQL goes away
     * mid-request (one create got 500 in the database-SIGTERM fault run);
     * a retry reads before it writes, so repeating it is safe. */
    static const uint32_t RETRYABLE_CODES[] = {1,   6,    7,     50,    64,    89,    91,   189,
                                               262, 9001, 10107, 11600, 11602, 13435, 13436};
    switch (error->domain) {
    case MONGOC_ERROR_STREAM:
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_PROTOCOL:
        return true;
    case MONGOC_ERROR_SERVER:
    case MONGOC_ERROR_WRITE_CONCERN:
        for (size_t i = 0; i < sizeof RETRYABLE_CODES / sizeof RETRYABLE_CODES[0]; i++) {
            if (error->code == RETRYABLE_CODES[i]) return true;
        }
        return false;
    default:
        return false;
    }
}

static void *probe(void *arg) {
    wk_store *store = arg;
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    while (!atomic_load(&store->is_stopping)) {
        bson_error_t error;
        mongoc_client_t *client = wk_store_pop(store);
        bool is_ok = mongoc_client_command_simple(client, "admin", ping, NULL, NULL, &error);
        wk_store_push(store, client);
        if (atomic_exchange(&store->is_reachable, is_ok) != is_ok)
            tk_log_fields(is_ok ? TK_LOG_INFO : TK_LOG_WARN, is_ok ? "database reachable" : "database unreachable",
                          is_ok ? NULL : json_pack("{s:s}", "error", error.message));
        for (int waited = 0; waited < WK_STORE_PROBE_MS && !atomic_load(&store->is_stopping); waited += 100)
            usleep(100 * 1000);
    }
    bson_destroy(ping);
    return NULL;
}

int wk_store_start_probe(wk_store *store) {
    if (pthread_create(&store->probe_thread, NULL, probe, store) != 0) return -1;
    store->is_probing = true;
    return 0;
}

void wk_store_close(wk_store *store) {
    if (store == NULL) return;
    if (store->is_probing) {
        atomic_store(&store->is_stopping, true);
        pthread_join(store->probe_thread, NULL);
        store->is_probing = false;
    }
    if (store->pool != NULL) mongoc_client_pool_destroy(store->pool);
    if (store->uri != NULL) mongoc_uri_destroy(store->uri);
    bson_free(store->database);
    wk_recent_destroy(store->recent);
    memset(store, 0, sizeof *store);
}
