/* wk_store — the MongoDB client pool and the tickets collection's indexes. */
#ifndef WK_STORE_H
#define WK_STORE_H

#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "wk_recent.h"

#define WK_TICKETS_COLLECTION "tickets"
#define WK_IDEMPOTENCY_COLLECTION "idempotency_keys"
#define WK_IDEMPOTENCY_TTL_SECONDS 86400 /* a client retry key is forgotten after a day */
#define WK_DUPLICATE_KEY 11000           /* MongoDB's error code for a unique index violation */
#define WK_STORE_PROBE_MS 2000
/* Defaults when MONGODB_URI does not set them (docs/operations.md): the
 * server gives up on an operation first (maxTimeMS), the driver on a silent
 * socket next, so a hung database holds a lane for seconds, not minutes. */
#define WK_STORE_MAX_TIME_MS 5000
#define WK_STORE_SOCKET_TIMEOUT_MS 10000
#define WK_STORE_SERVER_SELECTION_TIMEOUT_MS 5000

typedef struct {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char *database;           /* from the URI path, "ticketing" when absent */
    atomic_bool is_reachable; /* the last operation or probe reached the server */
    pthread_t probe_thread;
    bool is_probing;
    atomic_bool is_stopping;
    atomic_bool has_conditional_push; /* always set: see wk_reply_add in wk_reply.c */
    atomic_bool has_bulk_replies;     /* WORKER_BULK_REPLIES: a run of replies as one update (wk_replies_bulk) */
    wk_recent *recent;                /* owned: WORKER_RECENT_TICKETS copies of tickets as stored, or NULL (off) */
} wk_store;

/**
 * @brief Parses the URI (server selection 5 s and socket timeout 10 s unless
 * the URI says otherwise) and creates the pool. Does not connect yet.
 * @returns 0, or -1 with err.
 */
int wk_store_init(wk_store *store, const char *uri_text, char *err, size_t err_len);

/**
 * @brief Creates the indexes the queries use.
 * @returns 0, or -1 with err (retry later).
 */
int wk_store_ensure_indexes(wk_store *store, char *err, size_t err_len);

/** @brief Borrows a client for this thread (blocks while all are taken). */
mongoc_client_t *wk_store_pop(wk_store *store);

/** @brief Returns a client from wk_store_pop. */
void wk_store_push(wk_store *store, mongoc_client_t *client);

/** @brief The tickets collection for a popped client; caller destroys it. */
mongoc_collection_t *wk_store_tickets(wk_store *store, mongoc_client_t *client);

/** @brief The idempotency keys collection for a popped client; caller destroys it. */
mongoc_collection_t *wk_store_idempotency_keys(wk_store *store, mongoc_client_t *client);

/**
 * @returns true when error means "try again later": network, no server,
 * failover, and the ambiguous WriteConcernFailed and MaxTimeMSExpired (the
 * write may be stored; every operation reads before it writes on a retry, so
 * a stored write is answered as done with its event, a missing one is applied).
 */
bool wk_store_is_transient(const bson_error_t *error);

/**
 * @brief Pings the server every WK_STORE_PROBE_MS from a thread of its own, so
 * readiness follows the database even while no message arrives.
 * @returns 0, or -1 when the thread cannot start.
 */
int wk_store_start_probe(wk_store *store);

/** @brief Destroys the pool (stopping the probe first). Accepts a zeroed struct. */
void wk_store_close(wk_store *store);

#endif
