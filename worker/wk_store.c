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

int wk_store_ensure_indexes(wk_store *store, char *err, size_t err_len) {
    bson_error_t error;
    bson_t reply;
    mongoc_client_t *client = wk_store_pop(store);
    /* Team lists and the admin list, both newest first. */
    bson_t *command = BCON_NEW("createIndexes", BCON_UTF8(WK_TICKETS_COLLECTION), "indexes", "[",
                               "{", "key", "{", "teamId", BCON_INT32(1), "createdAt", BCON_INT32(-1), "_id",
                               BCON_INT32(-1), "}", "name", BCON_UTF8("team_newest_first"), "}",
                               "{", "key", "{", "createdAt", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "name",
                               BCON_UTF8("newest_first"), "}", "]");
    mongoc_database_t *database = mongoc_client_get_database(client, store->database);
    bool is_ok = mongoc_database_write_command_with_opts(database, command, NULL, &reply, &error);
    if (!is_ok) snprintf(err, err_len, "createIndexes failed: %s", error.message);
    bson_destroy(&reply);
    bson_destroy(command);
    mongoc_database_destroy(database);
    wk_store_push(store, client);
    return is_ok ? 0 : -1;
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
