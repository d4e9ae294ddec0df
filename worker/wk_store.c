#include "wk_store.h"

#include <stdio.h>
#include <string.h>

#define SERVER_SELECTION_TIMEOUT_MS 5000

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
        mongoc_uri_set_option_as_int32(store->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, SERVER_SELECTION_TIMEOUT_MS);
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

/* Indexes the queries use: team lists and the admin list, newest first. */
static bson_t *index_spec_new(int which) {
    if (which == 0)
        return BCON_NEW("key", "{", "teamId", BCON_INT32(1), "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}",
                        "name", BCON_UTF8("team_newest_first"));
    return BCON_NEW("key", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "name",
                    BCON_UTF8("newest_first"));
}
#define INDEX_COUNT 2

/* Names of the indexes already there. FerretDB 1.24 (SQLite) panics when
 * asked to create an index that exists, so only missing ones are created;
 * MongoDB behaves the same either way. @returns 0, or -1 with *error. */
static int existing_index_names(mongoc_collection_t *tickets, bool is_present[INDEX_COUNT], bson_error_t *error) {
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(tickets, NULL);
    const bson_t *index;
    while (mongoc_cursor_next(cursor, &index)) {
        bson_iter_t name;
        if (!bson_iter_init_find(&name, index, "name") || !BSON_ITER_HOLDS_UTF8(&name)) continue;
        for (int i = 0; i < INDEX_COUNT; i++) {
            bson_t *spec = index_spec_new(i);
            bson_iter_t wanted;
            if (bson_iter_init_find(&wanted, spec, "name") &&
                strcmp(bson_iter_utf8(&wanted, NULL), bson_iter_utf8(&name, NULL)) == 0)
                is_present[i] = true;
            bson_destroy(spec);
        }
    }
    int rc = mongoc_cursor_error(cursor, error) ? -1 : 0;
    mongoc_cursor_destroy(cursor);
    return rc;
}

int wk_store_ensure_indexes(wk_store *store, char *err, size_t err_len) {
    bson_error_t error;
    bool is_present[INDEX_COUNT] = {false};
    int rc = -1;
    mongoc_client_t *client = wk_store_pop(store);
    mongoc_collection_t *tickets = wk_store_tickets(store, client);
    if (existing_index_names(tickets, is_present, &error) != 0) {
        snprintf(err, err_len, "listIndexes failed: %s", error.message);
        goto cleanup;
    }
    bson_t indexes = BSON_INITIALIZER, child;
    uint32_t missing = 0;
    bson_append_array_begin(&indexes, "indexes", -1, &child);
    for (int i = 0; i < INDEX_COUNT; i++) {
        if (is_present[i]) continue;
        char key[16];
        snprintf(key, sizeof key, "%u", missing++);
        bson_t *spec = index_spec_new(i);
        bson_append_document(&child, key, -1, spec);
        bson_destroy(spec);
    }
    bson_append_array_end(&indexes, &child);
    rc = 0;
    if (missing > 0) {
        bson_t *command = BCON_NEW("createIndexes", BCON_UTF8(WK_TICKETS_COLLECTION));
        bson_concat(command, &indexes);
        bson_t reply;
        mongoc_database_t *database = mongoc_client_get_database(client, store->database);
        if (!mongoc_database_write_command_with_opts(database, command, NULL, &reply, &error)) {
            snprintf(err, err_len, "createIndexes failed: %s", error.message);
            rc = -1;
        }
        bson_destroy(&reply);
        mongoc_database_destroy(database);
        bson_destroy(command);
    }
    bson_destroy(&indexes);
cleanup:
    atomic_store(&store->is_reachable, rc == 0 || !wk_store_is_transient(&error));
    mongoc_collection_destroy(tickets);
    wk_store_push(store, client);
    return rc;
}

mongoc_client_t *wk_store_pop(wk_store *store) { return mongoc_client_pool_pop(store->pool); }

void wk_store_push(wk_store *store, mongoc_client_t *client) { mongoc_client_pool_push(store->pool, client); }

mongoc_collection_t *wk_store_tickets(wk_store *store, mongoc_client_t *client) {
    return mongoc_client_get_collection(client, store->database, WK_TICKETS_COLLECTION);
}

bool wk_store_is_transient(const bson_error_t *error) {
    /* Server codes that mean "not now": shutdown, failover, network. */
    static const uint32_t RETRYABLE_CODES[] = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436};
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

void wk_store_close(wk_store *store) {
    if (store == NULL) return;
    if (store->pool != NULL) mongoc_client_pool_destroy(store->pool);
    if (store->uri != NULL) mongoc_uri_destroy(store->uri);
    bson_free(store->database);
    memset(store, 0, sizeof *store);
}
